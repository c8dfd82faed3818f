"""Local files (ledgers, dead letters, state folders): errors that name the path and the cause.

An OSError's first argument is its errno, so a handler that prints `exc.args[0]` shows a bare
`21`, `28` or `17`. `LocalFileError` carries one sentence instead: the setting, the path, the
cause in words and what to do.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

_ADVICE = {
    errno.EISDIR: "it is a folder; name a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file of that name is in the way of the folder",
    errno.ENOSPC: "the disk is full; free space and run again",
    errno.EDQUOT: "the disk quota is exceeded; free space and run again",
    errno.EACCES: "permission denied; let the user running the plugin write there",
    errno.EPERM: "operation not permitted; let the user running the plugin write there",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "the folder does not exist",
}


def setting_path(value: str | os.PathLike[str]) -> Path:
    """A path setting as the user meant it: `~` is the home folder. Meltano and the SDK pass
    the text as written, and no shell expands it, so `~/x` would be a folder named `~`."""
    return Path(value).expanduser()


class LocalFileError(RuntimeError):
    """A local file or folder the run needs cannot be used; the message says which and why."""

    exit_code = 1  # docs/operations.md, "Exit codes": a failed run, the log names the cause


def describe(exc: OSError, path: str | Path, setting: str, purpose: str) -> str:
    cause = _ADVICE.get(exc.errno or 0) or (
        os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
    )
    return f"setting {setting}: cannot {purpose} {path}: {cause}"


@contextmanager
def local_file_errors(path: str | Path, setting: str, purpose: str) -> Iterator[None]:
    """Turn an OSError inside the block into a LocalFileError naming `path` and `setting`."""
    try:
        yield
    except OSError as exc:
        raise LocalFileError(describe(exc, path, setting, purpose)) from exc


@contextmanager
def as_setting_error(error: Callable[[str], Exception]) -> Iterator[None]:
    """A LocalFileError inside the block (a path checked at start) raised as the plugin's own
    settings error, with the same one-line message."""
    try:
        yield
    except LocalFileError as exc:
        raise error(str(exc)) from None


def check_file_path(path: str | Path, setting: str) -> None:
    """Refuse at start a file path that can never be written: a folder, or under a file."""
    target = Path(path)
    if target.is_dir():
        raise LocalFileError(
            f"setting {setting}: {target} is a folder; name a file (e.g. {target / 'x.jsonl'})"
        )
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise LocalFileError(
                    f"setting {setting}: cannot create {target}: {parent} is a file, not a folder"
                )
            break


def check_state_file(path: str | Path, config: Mapping[str, object], setting: str) -> None:
    """`check_file_path` for a file that defaults to one in the state folder: the error names
    `setting` when the config sets it, else `state_dir` (whose default file it then is)."""
    check_file_path(path, setting if config.get(setting) else "state_dir")


def check_folder_path(path: str | Path, setting: str) -> None:
    """Refuse at start a folder path that is a file (or lies under one)."""
    folder = Path(path)
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise LocalFileError(
                    f"setting {setting}: {folder} cannot be a folder: {candidate} is a file"
                )
            break
