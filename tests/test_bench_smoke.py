"""The benchmark driver in its tiny mode, so the scripts cannot rot (no figure is judged)."""

import json
import shutil
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


def bench(out: Path, work: Path, *extra: str, timeout: float = 280) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--quick",
            "--output-dir",
            str(out),
            "--workdir",
            str(work),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One whole quick run, shared by the tests below (its output is only read)."""
    root = tmp_path_factory.mktemp("bench")
    bench(root / "results", root / "work")
    return root / "results"


@pytest.mark.slow
def test_quick_run_writes_every_section(quick_run):
    out = quick_run
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

    # The backfill at the set's largest size also goes through `meltano run` of the job.
    sizes = results["backfill"]["sizes"]
    largest = max(sizes, key=int)
    under_meltano = sizes[largest]["meltano"]
    assert under_meltano["job"] == "appcues-to-salesforce"
    assert under_meltano["events_written"] == under_meltano["events_seeded"] == int(largest)
    assert under_meltano["tap_peak_rss_mb"] > 0
    assert under_meltano["target_peak_rss_mb"] > 0
    assert under_meltano["states_committed"] >= 1
    assert under_meltano["last_bookmark"]
    assert all("meltano" not in run for size, run in sizes.items() if size != largest)
    assert set(results["measured"]) == set(SECTIONS)
    assert len({stamp["run_started"] for stamp in results["measured"].values()}) == 1

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
        "## 8. Backfill",
    ):
        assert heading in md
    assert "**extrapolated**" in md
    assert "`meltano run appcues-to-salesforce`" in md
    assert "*Measured " not in md  # one run: no per-section stamps


@pytest.mark.slow
def test_only_backfill_merges_into_the_last_run(quick_run, tmp_path):
    """`--only backfill` re-measures that step alone; the other steps keep their figures and
    stamps, the goals are held against the merged figures, latest.md dates each section."""
    out = tmp_path / "results"
    shutil.copytree(quick_run, out)
    before = json.loads((out / "latest.json").read_text())
    bench(out, tmp_path / "work", "--only", "backfill", timeout=200)
    after = json.loads((out / "latest.json").read_text())

    for step in SECTIONS:
        if step != "backfill":
            assert json.dumps(after[step]) == json.dumps(before[step]), step  # NaN-safe
            assert after["measured"][step] == before["measured"][step], step
    old, new = before["measured"]["backfill"], after["measured"]["backfill"]
    assert new["run_started"] != old["run_started"]
    assert new["at"] >= old["at"]
    assert new["only"] == ["backfill"]
    assert new["commit"] and len(new["commit"]) == 40
    assert after["run"]["started"] == before["run"]["started"]
    assert [p["only"] for p in after["run"]["partial_runs"]] == [["backfill"]]
    assert {g["key"] for g in after["goals"]} == {g["key"] for g in before["goals"]}
    assert after["profiles"] == before["profiles"]

    md = (out / "latest.md").read_text()
    assert md.count("*Measured ") == len(SECTIONS)
    assert f"*Measured {new['at']} on commit `{new['commit'][:12]}`" in md
    assert "(`--only backfill`)" in md
