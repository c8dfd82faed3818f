"""What every sink of one run shares: settings, the Appcues client, ledger, dead letters."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from salesforce_appcues_clients.appcues import AppcuesClient
from salesforce_appcues_clients.plugin_kit.dead_letter_threshold import DeadLetterThreshold
from salesforce_appcues_clients.plugin_kit.run_lock import RunLock
from salesforce_appcues_clients.plugin_kit.run_summary import log_run_summary
from salesforce_appcues_clients.settings import AppcuesSettings

from .dead_letter import DeadLetterFile
from .imports import ImportContract
from .ledger import Ledger
from .settings import TargetSettings
from .summary import RunSummary


class Runtime:
    """Built once per target. The client is made on first use, so a run with nothing to
    send opens no connection at all."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.settings = TargetSettings.from_config(config)
        self.appcues = AppcuesSettings.from_config(config)
        # Taken at the start of a run, before the ledger is opened: a second run on this
        # state_dir refuses instead of sharing it.
        self.run_lock = RunLock(self.settings.state_dir / "run.lock", "target-appcues-profiles")
        self._ledger: Ledger | None = None
        self.dead_letters = DeadLetterFile(self.settings.dead_letter_path)
        self.summary = RunSummary()
        self.threshold = DeadLetterThreshold.from_config(config)
        self.request_slots = threading.Semaphore(self.settings.max_concurrency)
        self.import_contract = ImportContract()  # what this run learnt about imports
        self._client: AppcuesClient | None = None
        self._lock = threading.Lock()
        self._summary_logged = False
        self._closed = False

    def client(self) -> AppcuesClient:
        with self._lock:
            if self._client is None:
                self._client = AppcuesClient.from_config(self.config)
            return self._client

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger(self.settings.state_dir, self.appcues.account_id)
            return self._ledger

    def _settle_summary(self) -> None:
        """The summary's dead letters and API calls, as of now."""
        with self.summary.lock:
            self.summary.dead_lettered = self.dead_letters.counts.copy()
            self.summary.api_calls = self._client.requests_made if self._client is not None else 0

    def report(self) -> dict[str, Any]:
        self._settle_summary()
        return self.summary.details()

    def log_summary(self, logger: logging.Logger, *, failed: bool = False) -> None:
        """Logs the summary once per run (a failing batch logs it before the error)."""
        with self._lock:
            if self._summary_logged:
                return
            self._summary_logged = True
        label = "Run failed; summary so far" if failed else "Run summary"
        self._settle_summary()
        totals = self.summary.totals(failed=failed)
        log_run_summary(logger, totals, "%s: %s", label, json.dumps(totals.details))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._client is not None:
            self._client.close()
        if self._ledger is not None:
            self._ledger.close()
