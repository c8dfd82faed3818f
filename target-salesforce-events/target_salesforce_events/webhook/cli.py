"""`appcues-webhook-receiver serve --config config.json`: the long-lived receiver service."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
import uvicorn

from salesforce_appcues_clients.plugin_kit.run_lock import RunLock, RunLockedError

from ..pipeline import EventPipeline
from ..settings import SettingsError
from .app import create_app
from .metrics import ReceiverMetrics
from .settings import WebhookSettings, pipeline_config
from .spool import Spool
from .worker import SpoolWorker

log = logging.getLogger("appcues_webhook_receiver")


def _read_config(paths: tuple[Path, ...]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path in paths:
        config.update(json.loads(path.read_text(encoding="utf-8")))
    return config


@click.group()
def main() -> None:
    """Appcues webhooks -> Salesforce Events, in real time."""


@main.command()
@click.option(
    "--config",
    "configs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON config: the events target's settings plus webhook_* (repeatable, later wins).",
)
def serve(configs: tuple[Path, ...]) -> None:
    """Receive, verify and spool deliveries; load them into Salesforce."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = pipeline_config(_read_config(configs))
    try:
        settings = WebhookSettings.from_config(config)
        pipeline = EventPipeline(config)
    except SettingsError as exc:
        click.echo(f"Configuration error: {exc}", err=True)
        sys.exit(1)
    # The ledger is part of exactly-once: one process at a time on it (the poll job's
    # ledger is another file, see docs/operations.md).
    lock = RunLock(
        pipeline.settings.ledger_path.with_name(pipeline.settings.ledger_path.name + ".lock"),
        "appcues-webhook-receiver",
    )
    try:
        lock.acquire()
    except RunLockedError as exc:
        log.error("Refused to start: %s", exc)
        sys.exit(exc.exit_code)
    if pipeline.settings.sync_nps_fields and not pipeline.settings.nps_date_field:
        log.warning(
            "nps_date_field is not set: the poll job's ledger does not know the answers the "
            "receiver wrote, so a poll run may briefly put back an older NPS answer (its next "
            "run restores the latest). Set nps_date_field on both for latest-wins at all times."
        )
    spool = Spool(settings.spool_path)
    metrics = ReceiverMetrics(spool)
    worker = SpoolWorker(spool, pipeline, settings, metrics, renew=lambda: EventPipeline(config))

    def shut_down() -> None:  # the worker closed the pipeline when it stopped
        if worker.alive():
            # A batch still in Salesforce's hands (long retries): its rows stay spooled and
            # are loaded again at the next start (an upsert by event id, no duplicate).
            log.warning("Stopping with a batch unconfirmed; it stays in the spool")
            return
        log.info("%s", worker.pipeline.summary.describe())
        spool.close()
        lock.release()

    app = create_app(settings, spool, worker, metrics, on_shutdown=shut_down)
    log.info(
        "Receiving on http://%s:%d%s (scheme %s); spool %s with %d deliveries waiting",
        settings.host,
        settings.port,
        settings.path,
        settings.scheme,
        settings.spool_path,
        spool.depth(),
    )
    # SIGTERM/SIGINT: uvicorn stops accepting, the worker ends its batch, `shut_down` runs;
    # then uvicorn re-raises the signal, so the process ends by it (systemd: a clean stop).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,  # request lines add nothing the metrics do not count
        server_header=False,
    )
