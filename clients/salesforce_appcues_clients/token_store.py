"""The newest Salesforce refresh token, kept across runs when the connected app rotates them.

With refresh token rotation on, every refresh answers a new refresh token and retires the one
presented, so the configured `refresh_token` works exactly once. The store keeps the newest
token in a file of its own (mode 0600, replaced atomically), named after a fingerprint of the
client id and the *configured* token: a user who puts a new token in the setting starts a new
file, so the setting wins. Several processes (the tap and the events target, which log in
separately) may share one store: a refresh happens under an exclusive file lock around
read -> token request -> write, so no two of them present the same token and each starts from
the newest one. The token itself never reaches a log line or an exception.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import AuthenticationError

log = logging.getLogger(__name__)

DEFAULT_DIRECTORY = ".salesforce-tokens"


class RefreshTokenStore:
    """One configured refresh token's line of rotated successors, in `directory`."""

    def __init__(
        self, directory: str | Path, client_id: str, configured_token: str, lock_timeout: float
    ) -> None:
        self.directory = Path(directory).expanduser()
        digest = hashlib.sha256(f"{client_id}\n{configured_token}".encode()).hexdigest()[:32]
        self.path = self.directory / f"refresh-token-{digest}.json"
        self._lock = FileLock(self.path.with_suffix(".lock"), timeout=lock_timeout, mode=0o600)
        self._warned = False

    def __repr__(self) -> str:
        return f"<RefreshTokenStore {self.path}>"

    @contextlib.contextmanager
    def locked(self) -> Iterator[bool]:
        """Hold the store's lock; yields False (and warns once) when the folder is unusable,
        so the caller goes on without the store, as if rotation were not kept."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock.acquire()
        except Timeout:
            raise AuthenticationError(
                f"another process has held the refresh token lock {self._lock.lock_file} for "
                f"more than {self._lock.timeout:g} s; is a run stuck?"
            ) from None
        except OSError as exc:
            self._warn(f"cannot lock {self.path} ({exc.strerror})")
            yield False
            return
        try:
            yield True
        finally:
            self._lock.release()

    def read(self) -> str | None:
        """The stored token, or None (no file, or a file that is not ours: ignored)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._warn(f"cannot read {self.path} ({type(exc).__name__}); it is ignored")
            return None
        token = data.get("refresh_token") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token else None

    def write(self, token: str) -> bool:
        """Replace the stored token atomically (owner-only file); False if it failed."""
        payload = json.dumps(
            {"refresh_token": token, "saved_at": datetime.now(UTC).isoformat(timespec="seconds")}
        )
        try:
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".refresh-token-")
            try:
                os.fchmod(fd, 0o600)  # mkstemp makes it 0600 already; say so anyway
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            self._warn(f"cannot write {self.path} ({exc.strerror})")
            return False
        return True

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _warn(self, problem: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "Salesforce refresh token store: %s. A token Salesforce rotates is then kept "
                "for this run only and the next run fails with invalid_grant; make the folder "
                "of the setting token_store_dir writable.",
                problem,
            )
