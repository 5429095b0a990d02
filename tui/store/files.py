"""The SQLite history as a file: who may write it, what a failure to open or write it
means in one line, and the copy taken before a migration."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tui.store.records import StoreError


def _create_private(path: Path) -> None:
    # Prompts are the user's own business: the file (and the -wal/-shm files SQLite
    # creates with the same mode) is readable by its owner alone.
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def read_only_reason(path: Path) -> str | None:
    """Why the history at `path` cannot be written, or None. SQLite needs to write the
    file and create `-wal`/`-shm` beside it, so the folder counts too. os.access answers
    for root as well on a read-only mount (EROFS)."""
    folder = path.parent
    if folder.exists() and not os.access(folder, os.W_OK):
        return f"its folder {folder} is read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    return None


def open_problem(path: Path, exc: BaseException) -> str:
    """One line for a history that will not open: what is wrong and the way out."""
    read_only = read_only_reason(path)
    if read_only is not None:
        return (f"history {path} cannot be written ({read_only}): make it writable, or set "
                "WAN_TUI_HOME to a writable folder (`wan-tui doctor` checks it)")
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return (f"{path} is not a usable wan-tui database ({exc}): run `wan-tui doctor` to "
                "see how to recover it")
    return f"cannot open {path}: {exc} (`wan-tui doctor` checks the history)"


def io_problem(path: Path, what: str, exc: sqlite3.Error) -> str:
    """One line for a read or write that failed on an open history, with the way out."""
    read_only = read_only_reason(path)
    if read_only is not None or "readonly" in str(exc):
        return (f"history {path} cannot be written ({read_only or exc}): make it writable, "
                "or set WAN_TUI_HOME to a writable folder")
    if "disk is full" in str(exc):
        return (f"history {path}: the disk is full; free some space there (nothing "
                "already recorded is lost)")
    if "malformed" in str(exc) or "not a database" in str(exc):
        return (f"history {path} is damaged ({exc}): run `wan-tui doctor` to see how to "
                "recover it")
    return f"history database {what} failed: {exc} (`wan-tui doctor` checks the history)"


def backup_path(path: Path, version: int) -> Path:
    """Where the copy taken before migrating from schema `version` goes."""
    return path.with_name(f"{path.name}.v{version}.bak")


def backup_database(source: Path, dest: Path) -> None:
    """A consistent copy of `source` (WAL included) at `dest`, readable by its owner only;
    written beside it and renamed, so `dest` is always a whole database. Runs in a thread
    on its own connection (a WAL reader, so the caller may hold the write lock)."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        _create_private(tmp)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            out = sqlite3.connect(tmp)
            try:
                src.backup(out)
            finally:
                out.close()
        finally:
            src.close()
        os.replace(tmp, dest)
    except (OSError, sqlite3.Error) as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StoreError(
            f"cannot back up {source} to {dest} before upgrading its schema ({exc}); nothing "
            f"was changed: free space in {dest.parent} or make it writable, then try again"
        ) from exc

