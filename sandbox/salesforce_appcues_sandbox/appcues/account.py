"""The emulated Appcues account: its state and what each API operation does to it.

The model layer (like the Salesforce side's `models.Org`): `responses` turns HTTP requests into
calls on an `AppcuesAccount` and its answers into the wire format; it never sees the service.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from ..common import identities
from ..common.clock import SandboxClock
from ..common.stats import CallStats
from . import analytics, generator, imports
from .models import (
    AccountSettings,
    AppcuesStore,
    Event,
    ExportJob,
    ImportJob,
    JobRegistry,
    epoch_ms,
)
from .webhooks import WebhookSender
from .worker import BackgroundWorker


class AppcuesAccount:
    """One account: profiles, events, jobs, settings, webhooks and the counters they move."""

    def __init__(
        self,
        clock: SandboxClock,
        data_dir: Path | None,
        stats: CallStats,
        *,
        account_id: str,
        api_key: str,
        api_secret: str,
        settings: dict[str, Any],
    ) -> None:
        self.clock = clock
        self.stats = stats
        self.account_id = account_id
        self.api_key = api_key
        self.api_secret = api_secret
        self._default_settings = settings
        self.settings = AccountSettings()
        self.settings.update(self._default_settings)
        self.store = AppcuesStore(data_dir)
        self.jobs = JobRegistry()
        self.worker = BackgroundWorker("appcues-jobs")
        self.webhooks = WebhookSender(self.store, clock.now, self.account_id, self.stats)

    def now_ms(self) -> int:
        return epoch_ms(self.clock.now())

    def close(self) -> None:
        self.webhooks.close()
        self.worker.close()
        self.store.close()

    # --- state -------------------------------------------------------------------------
    def reset(self) -> None:
        self.webhooks.clear()
        self.store.reset()
        self.jobs.clear()
        self.stats.reset()
        self.settings = AccountSettings()
        self.settings.update(self._default_settings)

    def seed(self, body: dict[str, Any]) -> dict[str, int]:
        spec = generator.SeedSpec.from_json(body, self.clock.now())
        result = generator.generate(spec, self.store, self.now_ms())
        self.stats.incr("events_stored", result["events"])
        self.webhooks.notify()
        return result

    def seed_demo(self) -> dict[str, int]:
        return self.seed(dict(identities.DEMO_SEED))

    # --- profiles and events -----------------------------------------------------------
    def merge_profile(self, kind: str, key: str, attrs: dict[str, Any]) -> None:
        self.store.merge_profiles(kind, [(key, attrs)], self.now_ms())
        self.stats.incr("profiles_written" if kind == "user" else "groups_written")

    def delete_user(self, user_id: str) -> bool:
        if not self.store.delete_user(user_id):
            return False
        self.stats.incr("profiles_deleted")
        return True

    def add_group_users(self, group_id: str, user_ids: list[str]) -> None:
        self.store.add_members(group_id, user_ids)
        self.stats.incr("group_memberships_written", len(user_ids))

    def track_event(self, event: Event) -> None:
        now = self.now_ms()
        added = self.store.add_events([event], now)
        self.store.ensure_user(event.user_id, now)
        self.stats.incr("events_stored", added)
        self.webhooks.notify()

    # --- bulk import -------------------------------------------------------------------
    def start_import(self, kind: str, payload: imports.Payload) -> ImportJob:
        now = self.now_ms()
        job = ImportJob(
            job_id=str(uuid.uuid4()),
            kind=kind,
            created_ms=now,
            updated_ms=now,
            style=self.settings.import_job_style,
            row_base=self.settings.import_error_row_base,
        )
        self.jobs.add_import(job)
        self.stats.incr("import_jobs")
        if self.settings.import_job_stalls:  # a job that never ends: running, applies nothing
            job.status = "running"
        else:
            self.worker.submit(lambda: self.run_import(job, payload))
        return job

    def run_import(self, job: ImportJob, payload: imports.Payload) -> None:
        """Runs on the worker thread; a job dropped by a reset meanwhile is skipped."""
        if job.job_id not in self.jobs.imports:
            return
        imports.run_import(
            job,
            payload,
            self.store,
            self.now_ms,
            self.jobs.update_import,
            self.stats.incr,
        )
        self.stats.incr("import_rows", job.processed_rows)
        self.webhooks.notify()

    # --- analytics exports -------------------------------------------------------------
    def create_export(self, spec: Any) -> ExportJob:
        job = ExportJob(job_id=str(uuid.uuid4()), spec=spec, created_ms=self.now_ms())
        self.jobs.add_export(job)
        self.stats.incr("exports")
        self.worker.submit(lambda: self.run_export(job))
        return job

    def run_export(self, job: ExportJob) -> None:
        """Runs on the worker thread: queued -> running -> done | failed."""
        if job.job_id not in self.jobs.exports:
            return
        job.status = "running"
        threading.Event().wait(self.settings.export_running_seconds)
        try:
            query = analytics.compile_spec(
                job.spec,
                now=self.clock.now(),
                delay_seconds=self.settings.analytics_delay_seconds,
                max_days=None,
                **self.settings.analytics_window(),
            )
            result = analytics.run(self.store, query, cap=None)
        except analytics.SpecError as exc:
            job.failure_reason = exc.detail
            job.status = "failed"
            return
        rows = (
            result.rows[::-1] if self.settings.analytics_export_order == "reverse" else result.rows
        )
        job.content = json.dumps(rows, separators=(",", ":")).encode()
        job.row_count = len(result.rows)
        job.status = "done"

    def busy_exports(self) -> int:
        """Export jobs queued or running (what the concurrency headers report)."""
        return sum(1 for j in list(self.jobs.exports.values()) if j.status in ("queued", "running"))
