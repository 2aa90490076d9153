"""Optuna storages: open a database URL up front, with one-line errors that hide the password."""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

_STORAGE_ATTEMPTS = 5


def redact(url: str) -> str:
    """A database URL with its password hidden: ``postgresql://me:***@host/db``.

    Examples
    --------
    >>> redact("postgresql://me:secret@db.example/optuna")
    'postgresql://me:***@db.example/optuna'
    """
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


@contextlib.contextmanager
def _storage_errors(url):
    """Database problems (bad file, driver missing, unknown scheme, ...) as one ValueError line naming the URL."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, ImportError) as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split("(Background on")[0].split())
        if isinstance(exc, ImportError):
            reason += " (install the database driver for this URL)"
        raise ValueError(f"storage {redact(str(url))}: {reason}") from None


def _check_sqlite_writable(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    problem = ("is a folder" if path.is_dir()
               else "no such folder" if not path.parent.is_dir()
               else "read-only file" if path.exists() and not os.access(path, os.W_OK)
               else "read-only folder (sqlite writes its journal beside the file)"
               if not os.access(path.parent, os.W_OK) else None)
    if problem:
        raise ValueError(f"storage {redact(url)}: {problem}")


def open_storage(storage, heartbeat_interval=60, grace_period=None, max_retry=3):
    """Open an Optuna storage now, so that a bad one is found before any work: one line naming the URL.

    ``storage``: None (in memory) or an optuna storage object are returned as
    given; a database URL gets an ``RDBStorage`` with the heartbeat settings
    of :func:`tune`. A sqlite file is checked to be a writable database.

    Examples
    --------
    >>> open_storage("sqlite:///no/such/folder/study.db")
    Traceback (most recent call last):
    ...
    ValueError: storage sqlite:///no/such/folder/study.db: no such folder
    """
    if not isinstance(storage, str):
        return storage
    with _storage_errors(storage):
        _check_sqlite_writable(storage)
        # sqlite: wait for another process's write instead of failing with "database is locked" after 5 s
        engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = None if heartbeat_interval is None else RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            for attempt in range(_STORAGE_ATTEMPTS):
                try:
                    opened = RDBStorage(storage, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                        grace_period=grace_period, heartbeat_stale_trial_callback=retry)
                    opened.get_all_studies()  # reads the tables: a damaged file fails here, not mid-study
                    return opened
                except Exception as exc:  # noqa: BLE001 - sqlalchemy's errors; re-raised unless a creation race
                    # Workers started together on a new database race to create its tables ("table ... already
                    # exists", a duplicate schema version); the next attempt finds them made.
                    if attempt + 1 == _STORAGE_ATTEMPTS or type(exc).__name__ not in ("OperationalError",
                                                                                       "IntegrityError"):
                        raise
                    time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover
