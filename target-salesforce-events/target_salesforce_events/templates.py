"""Subject and Description templates: the integration's default table, user overrides, limits.

Templates run in Jinja2's SandboxedEnvironment, so a template cannot reach Python internals.
Whatever the attribute values are, the default templates render: a missing attribute is
empty, arithmetic on a non-number is empty (or uses the number a numeric string holds),
`None` is empty, characters Salesforce cannot store are dropped, and the result is cut to
the field's length with a visible mark.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

SUBJECT_MAX = 255
DESCRIPTION_MAX = 32_000
CUT_MARK = "…"  # ends a value we had to shorten, so readers know text is missing
CUSTOM_EVENTS_KEY = "*"  # the `templates` key that overrides the custom-event templates

_LOCATION = "Submission location: {{ currentPageUrl }} ({{ currentPageTitle }})"

# The integration's table (issue 8). The checklist item's label attribute is not documented
# anywhere we could check (appcues-api.md §4), so `itemLabel` is used with `itemName` as an
# alternative spelling.
DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "appcues:nps_score": (
        "Appcues NPS Score Submitted - {{ score }}",
        "{{ score }} NPS score. " + _LOCATION,
    ),
    "appcues:nps_feedback": (
        "Appcues NPS Feedback Submitted",
        "{{ feedback }} " + _LOCATION,
    ),
    "appcues:nps_score_and_feedback": (
        "Appcues NPS Score Submitted - {{ score }}",
        "{{ score }} NPS score. {{ feedback }} " + _LOCATION,
    ),
    "appcues:flow_completed": (
        "Appcues Flow Completed - {{ flowName }}",
        'User completed your Appcues flow titled "{{ flowName }}".',
    ),
    "appcues:checklist_item_completed": (
        "Appcues Checklist Item #{{ itemIndex + 1 }} Completed - {{ checklistName }}",
        'User has completed an item titled "{{ itemLabel or itemName }}". '
        'This is part of the "{{ checklistName }}" checklist.',
    ),
    "appcues:checklist_completed": (
        "Appcues Checklist Fully Completed - {{ checklistName }}",
        'User has completed all items in the "{{ checklistName }}" checklist.',
    ),
    "appcues:goal_reached": (
        "Appcues Goal Reached - {{ goalName }}",
        'User has completed the goal titled "{{ goalName }}"',
    ),
}

DEFAULT_CUSTOM_TEMPLATE: tuple[str, str] = (
    "Appcues Event - {{ name }}",
    'User triggered the Appcues event "{{ name }}".'
    "{% for key, value in attributes | dictsort if not key.startswith('_') %}"
    "\n{{ key }}: {{ value }}{% endfor %}",
)

# Characters XML 1.0 forbids (Salesforce stores text through XML-safe storage) and lone
# surrogates, which cannot be encoded for the wire.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")


class TemplateSettingError(ValueError):
    """A template in the `templates` setting does not compile."""


class _Empty(ChainableUndefined):
    """A missing value: renders empty, and any operation on it is empty too."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        return _Empty()

    __add__ = __radd__ = __sub__ = __rsub__ = _fail_with_undefined_error
    __mul__ = __rmul__ = __div__ = __rdiv__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _fail_with_undefined_error
    __mod__ = __rmod__ = __pos__ = __neg__ = _fail_with_undefined_error
    __pow__ = __rpow__ = __call__ = _fail_with_undefined_error
    __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error


def _as_number(value: Any) -> Any:
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return value


class _LenientSandbox(SandboxedEnvironment):
    """Arithmetic never fails on event data: `{{ itemIndex + 1 }}` with itemIndex '2' is 3."""

    intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%"])
    intercepted_unops = frozenset(["-", "+"])
    _ops: Mapping[str, Callable[[Any, Any], Any]] = {
        "+": operator.add,
        "-": operator.sub,
        "*": operator.mul,
        "/": operator.truediv,
        "//": operator.floordiv,
        "%": operator.mod,
    }

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        if isinstance(left, _Empty) or isinstance(right, _Empty) or None in (left, right):
            return _Empty()
        try:
            return super().call_binop(context, op, left, right)
        except (TypeError, ValueError, ArithmeticError):
            pass
        try:
            return super().call_binop(context, op, _as_number(left), _as_number(right))
        except (TypeError, ValueError, ArithmeticError):
            return _Empty()

    def call_unop(self, context: Context, op: str, arg: Any) -> Any:
        try:
            return super().call_unop(context, op, _as_number(arg))
        except (TypeError, ValueError, ArithmeticError):
            return _Empty()


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def utf16_length(text: str) -> int:
    """Length as Salesforce may count it (UTF-16 code units); never less than len()."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def fit(text: str, limit: int) -> tuple[str, bool]:
    """Drop unstorable characters and cut to `limit` UTF-16 units, ending with CUT_MARK."""
    text = _UNSTORABLE.sub("", text)
    if utf16_length(text) <= limit:
        return text, False
    budget = limit - utf16_length(CUT_MARK)
    kept: list[str] = []
    used = 0
    for ch in text:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > budget:
            break
        kept.append(ch)
        used += size
    return "".join(kept).rstrip() + CUT_MARK, True


@dataclass(frozen=True)
class RenderedText:
    subject: str
    description: str
    cut: bool  # True when Subject or Description had to be shortened


def _first_text(*candidates: Any) -> Any:
    for value in candidates:
        if value not in (None, "") and not isinstance(value, dict | list):
            return value
    return None


def template_context(
    *,
    name: str,
    attributes: Mapping[str, Any],
    context: Mapping[str, Any],
    event_id: str,
    user_id: str,
    timestamp: str,
    group_id: Any = None,
) -> dict[str, Any]:
    """The variables a template sees: the attributes, then the event's own fields.

    `currentPageUrl` / `currentPageTitle` come from the attributes when they carry them
    (also as the SDK's `_currentPageUrl` auto-properties, at the root or under `_identity`),
    else from the event's `context` (`url`, `title`).
    """
    identity = attributes.get("_identity")
    identity = identity if isinstance(identity, Mapping) else {}
    page_url = _first_text(
        attributes.get("currentPageUrl"),
        attributes.get("_currentPageUrl"),
        identity.get("_currentPageUrl"),
        context.get("url"),
    )
    page_title = _first_text(
        attributes.get("currentPageTitle"),
        attributes.get("_currentPageTitle"),
        identity.get("_currentPageTitle"),
        context.get("title"),
    )
    variables: dict[str, Any] = {k: v for k, v in attributes.items() if isinstance(k, str)}
    variables.update(
        {
            "name": name,
            "id": event_id,
            "user_id": user_id,
            "group_id": group_id,
            "timestamp": timestamp,
            "attributes": dict(attributes),
            "context": dict(context),
            "currentPageUrl": page_url,
            "currentPageTitle": page_title,
        }
    )
    return variables


class EventTemplates:
    """Compiled Subject/Description templates per event name, with the custom fallback."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._env = _LenientSandbox(
            undefined=_Empty, finalize=_finalize, autoescape=False, keep_trailing_newline=False
        )
        pairs = {**DEFAULT_TEMPLATES, CUSTOM_EVENTS_KEY: DEFAULT_CUSTOM_TEMPLATE}
        for name, override in (overrides or {}).items():
            subject, description = pairs.get(name, DEFAULT_CUSTOM_TEMPLATE)
            pairs[name] = (
                override.get("subject") or subject,
                override.get("description") or description,
            )
        self._compiled = {}
        for name, (subject, description) in pairs.items():
            self._compiled[name] = (
                self._compile(subject, name, "subject"),
                self._compile(description, name, "description"),
            )

    def _compile(self, source: str, name: str, part: str) -> Any:
        try:
            return self._env.from_string(source)
        except TemplateError as exc:
            raise TemplateSettingError(
                f"setting templates[{name!r}].{part} does not compile: {exc}"
            ) from None

    def has_template(self, name: str) -> bool:
        return name in self._compiled

    def render(self, name: str, variables: Mapping[str, Any]) -> RenderedText:
        """Render, clean and cut. Raises TemplateError only for a faulty user template."""
        subject_tpl, description_tpl = self._compiled.get(name, self._compiled[CUSTOM_EVENTS_KEY])
        subject, subject_cut = fit(" ".join(subject_tpl.render(variables).split()), SUBJECT_MAX)
        description, description_cut = fit(
            description_tpl.render(variables).strip(), DESCRIPTION_MAX
        )
        return RenderedText(subject, description, subject_cut or description_cut)
