"""pyinstrument profiles of plugin runs, attached to the goals a benchmark run missed.

A plugin's console script runs under `python -m pyinstrument` (same arguments, same stdin),
and the text report is kept under bench/results/profiles/. Only wall-clock goals get a
pyinstrument profile; API-call goals are explained by the per-path call counts the sandbox
recorded, which say exactly which calls were made.
"""

from __future__ import annotations

from pathlib import Path

from harness import VENV_BIN, PipelineRun, run_pipeline


def profile(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    workdir: Path,
    out_dir: Path,
    stdin_path: Path | None = None,
) -> tuple[Path, PipelineRun]:
    """Runs `argv` (a console script in .venv/bin and its arguments) under pyinstrument."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / f"{name}.txt"
    wrapped = [
        str(VENV_BIN / "python"),
        "-m",
        "pyinstrument",
        "-r",
        "text",
        "--no-color",
        "--no-unicode",
        "-p",
        "processor_options.filter_threshold=0.02",
        "--target-description",
        f"{name}: {Path(argv[0]).name}",
        "-o",
        str(report),
        *argv,
    ]
    run = run_pipeline(
        [(f"profile-{name}", wrapped)], env=env, workdir=workdir, stdin_path=stdin_path
    )
    run.last.check()
    return report, run


def excerpt(report: Path, lines: int = 45) -> str:
    """The head of a text report (the hottest call paths come first)."""
    text = report.read_text().splitlines()
    body = [line.rstrip() for line in text if line.strip()]
    return "\n".join(body[:lines])
