"""The goals of issue 10, each held against the figures of one benchmark run.

Every check gives {"goal", "figure", "met"}; `met` is None when the run did not measure it.
The goals are fixed here and never adjusted to the figures.
"""

from __future__ import annotations

from typing import Any

TAP_SPEED_RATIO = 2.0
EVENT_CALLS_PER_1000 = 12
FEWER_THAN_PER_EVENT = 100
IMPORT_SPEEDUP = 20
IDLE_CALLS_PER_STREAM = 1
RSS_RATIO = 1.5
SANDBOX_RECORDS_PER_SECOND = 20_000
# issue 19: the real-time path
WEBHOOK_P95_SECONDS = {10: 2.0, 100: 5.0}  # events/s -> p95 latency goal
WEBHOOK_CALLS_PER_1000_AT_100 = 12
BACKFILL_EVENTS = 1_000_000  # issue 20: a first sync of history
BACKFILL_MAX_CALLS = 100

LABELS = {"ours_rest": "REST", "ours_bulk2": "Bulk 2.0"}


def extraction(ex: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for phase in ("full", "incremental"):
        theirs = ex[phase]["theirs_rest"]
        for name, label in LABELS.items():
            ours = ex[phase][name]
            ratio = ex["ratios"][phase][name]["records_per_second"]
            fewer_calls = ours["api_calls"] <= theirs["api_calls"]
            out.append(
                {
                    "key": f"extraction_{phase}_{name}",
                    "goal": f"{phase} sync, our {label} >= {TAP_SPEED_RATIO:g}x singer-io's "
                    "records/s with no more API calls",
                    "figure": f"{ratio:g}x records/s; {ours['api_calls']} vs "
                    f"{theirs['api_calls']} API calls",
                    "met": ratio >= TAP_SPEED_RATIO and fewer_calls,
                    "speed_met": ratio >= TAP_SPEED_RATIO,
                    "calls_met": fewer_calls,
                }
            )
    return out


def salesforce_writes(sw: dict[str, Any]) -> list[dict[str, Any]]:
    per_1000 = sw["api_calls_per_1000_events"]
    factor = sw["fewer_than_one_per_event_factor"]
    return [
        {
            "key": "events_calls_per_1000",
            "goal": f"at most {EVENT_CALLS_PER_1000} Salesforce API calls per 1,000 events",
            "figure": f"{per_1000:g} per 1,000 ({sw['api_calls']} for {sw['events']:,} events)",
            "met": per_1000 <= EVENT_CALLS_PER_1000,
        },
        {
            "key": "events_vs_one_per_event",
            "goal": f"at least {FEWER_THAN_PER_EVENT}x fewer calls than one call per event",
            "figure": f"{factor:g}x fewer",
            "met": factor is not None and factor >= FEWER_THAN_PER_EVENT,
        },
    ]


def appcues_writes(aw: dict[str, Any]) -> list[dict[str, Any]]:
    largest = aw["largest"]
    patch = aw["runs"][f"patch_{largest}"]
    speedup = aw["import_speedup_at_largest"]
    how = (
        "measured"
        if patch["measured"]
        else (
            f"PATCH extrapolated from the measured {patch['extrapolated_from_profiles']:,}-profile "
            "run at the 50 requests/s cap"
        )
    )
    return [
        {
            "key": "import_speedup",
            "goal": f"import mode >= {IMPORT_SPEEDUP}x faster than PATCH at {largest:,} profiles",
            "figure": f"{speedup:g}x ({how})",
            "met": speedup >= IMPORT_SPEEDUP,
        },
        {
            "key": "no_429",
            "goal": "no 429 at default settings",
            "figure": f"{aw['responses_429_total']} responses 429 over all runs",
            "met": aw["responses_429_total"] == 0,
        },
    ]


def idle_runs(idle: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for job, figures in idle["jobs"].items():
        streams = len(figures["streams"])
        calls = figures["idle"]["api_calls"]
        out.append(
            {
                "key": f"idle_{job}",
                "goal": f"idle `{job}` run: at most {IDLE_CALLS_PER_STREAM} call per stream",
                "figure": f"{calls} calls for {streams} stream(s) "
                f"({figures['calls_per_stream']:g} per stream)",
                "met": calls <= IDLE_CALLS_PER_STREAM * streams,
            }
        )
    return out


def memory(mem: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, series in mem["series"].items():
        rss = series["peak_rss_mb"]
        ratio = series["largest_over_smallest"]
        sizes = list(rss)
        out.append(
            {
                "key": f"memory_{name}",
                "goal": f"{name}: peak RSS of the largest size within {RSS_RATIO:g}x of the "
                "smallest",
                "figure": "only one size measured"
                if ratio is None
                else f"{ratio:g}x ({rss[sizes[0]]:g} MB at {int(sizes[0]):,} -> "
                f"{rss[sizes[-1]]:g} MB at {int(sizes[-1]):,})",
                "met": series["meets_goal"],
            }
        )
    return out


def sandbox_serving(sv: dict[str, Any]) -> list[dict[str, Any]]:
    rest = sv["query_all"]["records_per_second"]
    bulk = sv["bulk2"]["records_per_second"]
    return [
        {
            "key": "sandbox_serving",
            "goal": f"the sandbox serves >= {SANDBOX_RECORDS_PER_SECOND:,} records/s (not the "
            "bottleneck)",
            "figure": f"queryAll {rest:,} records/s, Bulk 2.0 {bulk:,} records/s",
            "met": bool(sv["meets_goal"]),
        }
    ]


def webhook_latency(wl: dict[str, Any]) -> list[dict[str, Any]]:
    """Held against the upper bound (CreatedDate keeps whole seconds)."""
    out = []
    for run in wl.values():
        rate = int(run["rate_per_second"])
        upper = run["latency_upper_bound_seconds"]["p95"]
        if rate in WEBHOOK_P95_SECONDS:
            goal = WEBHOOK_P95_SECONDS[rate]
            out.append(
                {
                    "key": f"webhook_p95_{rate}",
                    "goal": f"webhook -> Salesforce Event p95 under {goal:g} s at {rate} events/s",
                    "figure": f"p95 <= {upper:g} s ({run['events']:,} events in "
                    f"{run['seconds']:g} s)",
                    "met": upper < goal,
                }
            )
        if rate == 100:
            per_1000 = run["salesforce_calls_per_1000"]
            out.append(
                {
                    "key": "webhook_calls_per_1000_at_100",
                    "goal": f"at most {WEBHOOK_CALLS_PER_1000_AT_100} Salesforce calls per "
                    "1,000 webhook events at 100 events/s",
                    "figure": f"{per_1000:g} per 1,000",
                    "met": per_1000 <= WEBHOOK_CALLS_PER_1000_AT_100,
                }
            )
    return out


def backfill(bf: dict[str, Any]) -> list[dict[str, Any]]:
    runs = {int(n): r for n, r in bf["sizes"].items()}
    largest = max(runs)
    big = runs.get(BACKFILL_EVENTS)
    bulk, coll = runs[largest]["bulk2"], runs[largest]["collections"]
    out = [
        {
            "key": "backfill_calls",
            "goal": f"backfill of {BACKFILL_EVENTS:,} events through Bulk 2.0 in at most "
            f"{BACKFILL_MAX_CALLS} Salesforce API calls",
            "figure": f"{big['bulk2']['api_calls']} calls (collections: "
            f"{big['collections']['api_calls']})"
            if big
            else f"not run at {BACKFILL_EVENTS:,} (FULL=1); at {largest:,}: "
            f"{bulk['api_calls']} calls (collections: {coll['api_calls']})",
            "met": big["bulk2"]["api_calls"] <= BACKFILL_MAX_CALLS if big else None,
        },
        {
            "key": "backfill_speed",
            "goal": "backfill through Bulk 2.0 at least as fast as collections",
            "figure": f"at {largest:,}: {bulk['events_per_second']:,} vs "
            f"{coll['events_per_second']:,} events/s",
            "met": bulk["events_per_second"] >= coll["events_per_second"],
        },
    ]
    small = runs.get(100_000)
    if big and small:
        ratio = round(big["bulk2"]["peak_rss_mb"] / small["bulk2"]["peak_rss_mb"], 2)
        out.append(
            {
                "key": "backfill_memory",
                "goal": f"Bulk 2.0 backfill: peak RSS at {BACKFILL_EVENTS:,} within "
                f"{RSS_RATIO:g}x of 100,000",
                "figure": f"{ratio:g}x ({small['bulk2']['peak_rss_mb']:g} -> "
                f"{big['bulk2']['peak_rss_mb']:g} MB)",
                "met": ratio <= RSS_RATIO,
            }
        )
    piped_big, piped_small = (big or {}).get("pipeline"), (small or {}).get("pipeline")
    if piped_big and piped_small:
        ratio = round(piped_big["tap_peak_rss_mb"] / piped_small["tap_peak_rss_mb"], 2)
        out.append(
            {
                "key": "backfill_pipeline_tap_memory",
                "goal": f"pipeline backfill: the tap's peak RSS at {BACKFILL_EVENTS:,} within "
                f"{RSS_RATIO:g}x of 100,000",
                "figure": f"{ratio:g}x ({piped_small['tap_peak_rss_mb']:g} -> "
                f"{piped_big['tap_peak_rss_mb']:g} MB)",
                "met": ratio <= RSS_RATIO,
            }
        )
    under_meltano = runs[largest].get("meltano")
    if under_meltano:
        landed, seeded = under_meltano["events_written"], under_meltano["events_seeded"]
        out.append(
            {
                "key": "backfill_meltano_complete",
                "goal": "`meltano run appcues-to-salesforce` backfill: every seeded event lands "
                "as an Event and Meltano stores the bookmark",
                "figure": f"at {largest:,}: {landed:,} of {seeded:,} landed; bookmark "
                f"{under_meltano['last_bookmark'] or 'none'}",
                "met": landed == seeded and bool(under_meltano["last_bookmark"]),
            }
        )
    return out


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for key, fn in (
        ("extraction", extraction),
        ("salesforce_writes", salesforce_writes),
        ("appcues_writes", appcues_writes),
        ("idle_runs", idle_runs),
        ("memory", memory),
        ("sandbox_serving", sandbox_serving),
        ("webhook_latency", webhook_latency),
        ("backfill", backfill),
    ):
        if key in results:
            checks += [dict(c, section=key) for c in fn(results[key])]
    return checks
