"""Path settings written with `~` mean the home folder, for the target and the receiver."""

from __future__ import annotations

from target_salesforce_events.settings import EventSettings
from target_salesforce_events.webhook.settings import WebhookSettings, pipeline_config


def test_tilde_paths_write_under_home(org, kit, tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)  # a literal "~" folder would appear here
    user = org.user("tilde")
    contact = org.create("Contact", Product_User_Id__c=user)
    good = kit.event(user, "appcues:flow_completed", "2026-03-02T10:00:00Z", f"{org.tag}-t1")
    bad = kit.event(user, "appcues:flow_completed", "not a time", f"{org.tag}-t2")
    config = {
        **org.config(sync_nps_fields=False),
        "state_dir": "~/events-state",
        "dead_letter_path": "~/letters/events.jsonl",
    }
    _, states = kit.run_target(config, [good, bad])
    assert states, "the run confirmed its batch"
    assert len(org.events_of(contact)) == 1
    assert (home / "events-state" / "ledger.sqlite3").is_file()
    letters = (home / "letters" / "events.jsonl").read_text().splitlines()
    assert len(letters) == 1 and f"{org.tag}-t2" in letters[0]
    assert not (work / "~").exists()


def test_the_receivers_tilde_paths_resolve_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    parsed = WebhookSettings.from_config(
        {"webhook_secrets": ["s"], "webhook_spool_path": "~/spool/deliveries.sqlite3"}
    )
    assert parsed.spool_path == tmp_path / "spool" / "deliveries.sqlite3"
    parsed = WebhookSettings.from_config({"webhook_secrets": ["s"], "state_dir": "~/receiver"})
    assert parsed.spool_path == tmp_path / "receiver" / "webhook-spool.sqlite3"
    # the receiver's pipeline (its ledger) in the same folder
    pipeline = EventSettings.from_config(pipeline_config({"state_dir": "~/receiver"}))
    assert pipeline.ledger_path == tmp_path / "receiver" / "ledger.sqlite3"
