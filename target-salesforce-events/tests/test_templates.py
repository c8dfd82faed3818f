"""The default template table, overrides, missing values, truncation and the sandbox."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesforce_appcues_clients.appcues_events import DEFAULT_EVENT_NAMES
from target_salesforce_events.templates import (
    CUT_MARK,
    DESCRIPTION_MAX,
    SUBJECT_MAX,
    EventTemplates,
    TemplateSettingError,
    fit,
    template_context,
    utf16_length,
)

PAGE = {"url": "https://app.example.com/settings", "title": "Settings"}


def render(name, attributes, context=PAGE, templates=None):
    variables = template_context(
        name=name,
        attributes=attributes,
        context=context,
        event_id="ev-1",
        user_id="u-1",
        timestamp="2026-01-02T03:04:05.000Z",
    )
    return (templates or EventTemplates()).render(name, variables)


@pytest.mark.parametrize(
    ("name", "attributes", "subject", "description"),
    [
        (
            "appcues:nps_score",
            {"score": 9},
            "Appcues NPS Score Submitted - 9",
            "9 NPS score. Submission location: https://app.example.com/settings (Settings)",
        ),
        (
            "appcues:nps_feedback",
            {"feedback": "Love it"},
            "Appcues NPS Feedback Submitted",
            "Love it Submission location: https://app.example.com/settings (Settings)",
        ),
        (
            "appcues:flow_completed",
            {"flowName": "Welcome tour"},
            "Appcues Flow Completed - Welcome tour",
            'User completed your Appcues flow titled "Welcome tour".',
        ),
        (
            "appcues:checklist_item_completed",
            {"itemIndex": 2, "checklistName": "Onboarding", "itemLabel": "Invite a teammate"},
            "Appcues Checklist Item #3 Completed - Onboarding",
            'User has completed an item titled "Invite a teammate". '
            'This is part of the "Onboarding" checklist.',
        ),
        (
            "appcues:checklist_completed",
            {"checklistName": "Onboarding"},
            "Appcues Checklist Fully Completed - Onboarding",
            'User has completed all items in the "Onboarding" checklist.',
        ),
        (
            "appcues:goal_reached",
            {"goalName": "Activated"},
            "Appcues Goal Reached - Activated",
            'User has completed the goal titled "Activated"',
        ),
    ],
)
def test_default_table(name, attributes, subject, description):
    text = render(name, attributes)
    assert (text.subject, text.description, text.cut) == (subject, description, False)


def test_custom_event_subject_and_attributes():
    text = render("Clicked upgrade", {"plan": "Team", "_hidden": 1})
    assert text.subject == "Appcues Event - Clicked upgrade"
    assert "plan: Team" in text.description
    assert "_hidden" not in text.description


def test_missing_attributes_render_empty_not_error():
    text = render("appcues:checklist_item_completed", {})
    assert text.subject == "Appcues Checklist Item # Completed -"
    assert text.description.startswith('User has completed an item titled "".')


def test_numeric_string_index_is_counted_and_junk_is_empty():
    assert render("appcues:checklist_item_completed", {"itemIndex": "4"}).subject.startswith(
        "Appcues Checklist Item #5 "
    )
    assert (
        "#  Completed" not in render("appcues:checklist_item_completed", {"itemIndex": "x"}).subject
    )
    assert render("appcues:checklist_item_completed", {"itemIndex": None}).subject.startswith(
        "Appcues Checklist Item # Completed"
    )


def test_page_from_attributes_wins_over_context():
    attributes = {
        "score": 3,
        "_identity": {"_currentPageUrl": "https://a/x", "_currentPageTitle": "X"},
    }
    assert render("appcues:nps_score", attributes).description.endswith("https://a/x (X)")
    assert render("appcues:nps_score", {"score": 3}, context={}).description.endswith(" ()")


def test_overrides_replace_only_what_they_name():
    templates = EventTemplates(
        {
            "appcues:flow_completed": {"subject": "Flow {{ flowName | upper }}"},
            "*": {"description": "custom {{ name }} by {{ user_id }}"},
        }
    )
    flow = render("appcues:flow_completed", {"flowName": "tour"}, templates=templates)
    assert flow.subject == "Flow TOUR"
    assert flow.description == 'User completed your Appcues flow titled "tour".'
    custom = render("Clicked", {}, templates=templates)
    assert (custom.subject, custom.description) == (
        "Appcues Event - Clicked",
        "custom Clicked by u-1",
    )


def test_bad_override_names_the_setting():
    with pytest.raises(TemplateSettingError, match=r"templates\['appcues:goal_reached'\]\.subject"):
        EventTemplates({"appcues:goal_reached": {"subject": "{{ unclosed"}})


def test_sandbox_blocks_python_internals():
    # Unsafe attributes are undefined in the sandbox, so they render empty.
    probe = "{{ name.__class__.__mro__[1].__subclasses__() }}{{ lipsum.__globals__ }}"
    templates = EventTemplates({"x": {"subject": probe, "description": "{{ name.format_map }}"}})
    assert render("x", {}, templates=templates).subject == ""
    templates = EventTemplates({"x": {"subject": "{{ '{0.__class__}'.format(name) }}"}})
    assert "class" not in render("x", {}, templates=templates).subject
    templates = EventTemplates({"x": {"subject": "{{ name.mro() }}{{ range.__self__ }}"}})
    assert "builtins" not in render("x", {}, templates=templates).subject


def test_truncation_is_marked():
    text = render("appcues:flow_completed", {"flowName": "f" * 400})
    assert len(text.subject) == SUBJECT_MAX and text.subject.endswith(CUT_MARK)
    assert text.cut
    long_feedback = render("appcues:nps_feedback", {"feedback": "w " * 20_000})
    assert utf16_length(long_feedback.description) <= DESCRIPTION_MAX
    assert long_feedback.description.endswith(CUT_MARK)


def test_fit_counts_utf16_units_and_drops_unstorable():
    cut, was_cut = fit("😀" * 200, SUBJECT_MAX)
    assert was_cut and utf16_length(cut) <= SUBJECT_MAX and "\ud83d" not in cut
    assert fit("a\x00b\x1fc\ud800d", 10) == ("abcd", False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)
long_texts = st.builds(
    lambda piece, times: piece * times, st.text(min_size=1, max_size=4), st.integers(5_000, 33_000)
)
attribute_maps = st.dictionaries(
    st.sampled_from(
        [
            "score",
            "feedback",
            "flowName",
            "itemIndex",
            "itemLabel",
            "checklistName",
            "goalName",
            "currentPageUrl",
            "_identity",
            "name",
        ]
    )
    | st.text(max_size=10),
    json_values | long_texts,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(DEFAULT_EVENT_NAMES) | st.text(max_size=300),
    attributes=attribute_maps,
    context=st.dictionaries(st.sampled_from(["url", "title"]), json_values, max_size=2),
)
def test_any_attributes_render_within_limits(name, attributes, context):
    text = render(name, attributes, context=context)
    assert utf16_length(text.subject) <= SUBJECT_MAX
    assert utf16_length(text.description) <= DESCRIPTION_MAX
    for value in (text.subject, text.description):
        assert not any(ord(c) < 0x20 and c not in "\t\n\r" for c in value)
        value.encode("utf-8")  # no lone surrogates
