"""skcxr.cache's per-key locks when their holder stops: the waiter says so, then gives up with a clear error.

Holder and waiter are subprocesses running a small script that imports skcxr.cache and never torch, so
each test takes a few seconds. A holder signals that it holds the lock by creating a ready-file (from inside
the cached function, which runs under the lock); the tests wait for that file, not for a fixed time.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skcxr.cache import LOCK_TIMEOUT, _locks, check_memory

PROBE = '''\
import glob, json, os, signal, sys, threading, time, warnings
from pathlib import Path

from skcxr.cache import _locks, check_memory


def square(x, ready=None, hold=0.0, stop=False, verbose=0):
    if ready:
        Path(ready).touch()
    if stop:
        os.kill(os.getpid(), signal.SIGSTOP)  # stopped while it holds the lock, as by Ctrl-Z
    if hold:  # hold the lock for `hold` seconds from the moment the waiter starts waiting (however slow its start)
        waiting = Path(ready).with_name("waiting")
        deadline = time.monotonic() + 60
        while not waiting.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(hold)
    return x * x


role, location, ready, *steps = sys.argv[1:]
memory = check_memory(location)
cached = memory.cache(square, ignore=["ready", "hold", "stop", "verbose"])
if role == "stopped":
    cached(3, ready=ready, stop=True)
elif role == "holder":
    cached(3, ready=ready, hold=float(steps[0]))
else:  # waiter: one call per step ("1", "0": its verbose; "unlink": verbose=0, the lock file deleted meanwhile)
    _locks._NOTICE_AFTER = 0.1
    out = []
    for step in steps:
        if step == "unlink":
            locks = os.path.join(memory._store(), _locks._LOCKS, "*.lock")
            threading.Timer(0.1, lambda: [os.unlink(p) for p in glob.glob(locks)]).start()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Path(ready).with_name("waiting").touch()
            start = time.monotonic()
            try:
                result = repr(cached(3, verbose=int(step == "1")))
            except TimeoutError as exc:
                result = f"TimeoutError: {exc}"
        out.append({"result": result, "seconds": time.monotonic() - start,
                    "notices": [str(w.message) for w in caught]})
    stats = {f"{name} {event}": n for (name, event), n in memory.stats().items()}
    print(json.dumps({"calls": out, "stats": stats}))
'''


@pytest.fixture
def probe(tmp_path):
    """Start the probe script in a role; every process started is killed (stopped ones too) at teardown."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {**os.environ, "SKCXR_LOCK_TIMEOUT": "0.5"}
    started = []

    def start(role, *steps):
        proc = subprocess.Popen([sys.executable, str(script), role, str(tmp_path / "cache"),
                                 str(tmp_path / "ready"), *steps], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.communicate()


def _holding(proc, ready, limit=30.0):
    """Wait until ``proc`` has created ``ready`` (it then holds the lock)."""
    deadline = time.monotonic() + limit
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.01)


def _wait(proc, limit=30.0):
    out, err = proc.communicate(timeout=limit)  # the waiter of a stopped holder hung here before the fix
    assert proc.returncode == 0, err
    return json.loads(out)


def test_waiter_on_stopped_holder_says_so_and_gives_up(tmp_path, probe):
    holder = probe("stopped")
    _holding(holder, tmp_path / "ready")
    (lock,) = (tmp_path / "cache").rglob("*.lock")
    verbose, quiet, unlinked = _wait(probe("waiter", "1", "0", "unlink"))["calls"]
    for call in (verbose, quiet):
        assert call["result"].startswith(f"TimeoutError: Gave up waiting for the cache lock {lock} "
                                         "(__main__.square): process")
        assert f"process {holder.pid} holds it and has shown no sign of life for 0.5 s" in call["result"]
        assert f"resume it (kill -CONT {holder.pid}) or end it (kill -KILL {holder.pid})" in call["result"]
        assert call["result"].endswith("or raise SKCXR_LOCK_TIMEOUT.")
        assert 0.5 <= call["seconds"] < 5
    # One notice, and only for the verbose call (a quiet one says so after 60 s without a sign of life).
    assert verbose["notices"] == [
        f"Waiting for process {holder.pid} to finish computing __main__.square (it holds the cache lock {lock}); "
        "giving up once it has shown no sign of life for 0.5 s (SKCXR_LOCK_TIMEOUT)."
    ]
    assert quiet["notices"] == []
    # Deleting the lock file (as the error suggests) lets a waiter compute it.
    assert unlinked["result"] == "9" and unlinked["notices"] == []


def test_waiter_reads_result_of_live_holder_that_takes_longer_than_the_timeout(tmp_path, probe):
    holder = probe("holder", "2")  # 4 times the timeout: its heartbeat keeps the waiter waiting
    _holding(holder, tmp_path / "ready")
    report = _wait(probe("waiter", "1"))
    (call,) = report["calls"]
    assert call["result"] == "9" and call["seconds"] >= 0.5
    assert len(call["notices"]) == 1 and call["notices"][0].startswith(f"Waiting for process {holder.pid} ")
    assert holder.wait(timeout=30) == 0
    assert report["stats"] == {"__main__.square miss": 1, "__main__.square waited": 1}
    assert not list((tmp_path / "cache").rglob("*.lock"))


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_lock_timeout_must_be_positive_seconds(monkeypatch, value):
    monkeypatch.setenv("SKCXR_LOCK_TIMEOUT", value)
    with pytest.raises(ValueError, match="SKCXR_LOCK_TIMEOUT must be a number of seconds > 0"):
        _locks._lock_timeout()


def test_lock_timeout_default_and_override(monkeypatch):
    monkeypatch.delenv("SKCXR_LOCK_TIMEOUT", raising=False)
    assert _locks._lock_timeout() == LOCK_TIMEOUT == 600
    monkeypatch.setenv("SKCXR_LOCK_TIMEOUT", "2.5")
    assert _locks._lock_timeout() == 2.5


def _fit(estimator, X, verbose=0):
    return estimator


def test_verbose_calls_are_those_that_ask_for_progress(tmp_path):
    cached = check_memory(tmp_path).cache(_fit, ignore=["verbose"])
    assert cached._verbose((LogisticRegression(), [0]), {"verbose": 1})
    assert cached._verbose((make_pipeline(LogisticRegression(verbose=2)), [0]), {})  # a step's parameter
    assert not cached._verbose((LogisticRegression(), [0]), {"verbose": 0})
    assert not cached._verbose((LogisticRegression(), [0]), {})
