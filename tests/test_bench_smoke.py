"""The benchmark driver in its tiny mode, so the scripts cannot rot (no figure is judged)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTIONS = (
    "extraction",
    "salesforce_writes",
    "appcues_writes",
    "idle_runs",
    "memory",
    "sandbox_serving",
    "webhook_latency",
    "backfill",
)


@pytest.mark.slow
def test_quick_run_writes_every_section(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--quick",
            "--output-dir",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "latest.json").read_text())
    assert {"run", "machine", "goals", "profiles", *SECTIONS} <= set(results)
    assert results["run"]["mode"] == "quick"
    assert results["machine"]["cpu_cores"] >= 1
    assert results["machine"]["packages"]["singer-sdk"]

    ex = results["extraction"]
    contacts = results["run"]["sizes"]["contacts"]
    for name in ("ours_rest", "ours_bulk2", "theirs_rest"):
        assert ex["full"][name]["records"] == contacts
        assert ex["full"][name]["api_calls"] >= 1
        assert ex["full"][name]["peak_rss_mb"] > 0
        assert ex["incremental"][name]["records"] >= ex["changed"] > 0

    sw = results["salesforce_writes"]
    # The Events go by collections, Composite (with the NPS updates) or Bulk 2.0 ingest.
    assert sw["event_writes"] + sw["composite_writes"] + sw["ingest_calls"] >= 1
    assert sw["lookups"] >= 1
    assert sw["api_calls"] == sw["api_calls_logged_by_target"]

    runs = results["appcues_writes"]["runs"]
    for run in runs.values():
        if run["measured"]:
            assert run["profiles_stored"] == run["profiles"]
    assert any(not run["measured"] for run in runs.values())  # PATCH at the largest size

    for job in results["idle_runs"]["jobs"].values():
        assert job["streams"]
        assert job["priming"]["api_calls"] >= job["idle"]["api_calls"] >= 1

    for series in results["memory"]["series"].values():
        assert all(rss > 0 for rss in series["peak_rss_mb"].values())
    assert results["sandbox_serving"]["query_all"]["records"] == contacts

    keys = {goal["key"] for goal in results["goals"]}
    assert {"events_calls_per_1000", "import_speedup", "no_429", "sandbox_serving"} <= keys
    assert any(k.startswith("idle_") for k in keys)
    assert any(k.startswith("memory_") for k in keys)
    for key, profile in results["profiles"].items():
        assert (out / profile["path"]).read_text().strip(), key

    md = (out / "latest.md").read_text()
    for heading in (
        "## Goals",
        "## 1. Extraction",
        "## 2. Salesforce writes",
        "## 3. Appcues writes",
        "## 4. Idle runs",
        "## 5. Memory",
        "## 6. The sandbox's serving rate",
    ):
        assert heading in md
    assert "**extrapolated**" in md
