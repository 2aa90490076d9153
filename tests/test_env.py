"""skcxr._env: the library versions and the machine, read without importing the libraries."""

import builtins
import platform
import subprocess
import sys

import skcxr
from skcxr import _env


def test_versions_are_the_installed_distributions():
    from importlib.metadata import version

    assert _env.versions() == {"skcxr": skcxr.__version__, "scikit-learn": version("scikit-learn"),
                               "skorch": version("skorch"), "torch": version("torch"), "numpy": version("numpy"),
                               "python": platform.python_version()}


def test_reading_versions_and_the_cpu_imports_no_library():
    code = ("import sys; from skcxr import _env; _env.versions(); _env.library_versions(_env.CACHE_LIBRARIES); "
            "_env.cpu_description(); _env.cpu_has_bf16(); "
            "print(sorted({'torch', 'sklearn', 'skorch', 'numpy', 'scipy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_library_versions_keep_the_order_and_mark_missing_ones():
    pairs = _env.library_versions(("numpy", "no-such-distribution-here", "scikit-learn"))
    assert [name for name, _ in pairs] == ["numpy", "no-such-distribution-here", "scikit-learn"]
    assert pairs[1][1] is None and pairs[0][1] is not None


def test_cpu_without_cpuinfo(monkeypatch):
    real_open = builtins.open

    def no_cpuinfo(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_cpuinfo)
    monkeypatch.setattr(sys, "platform", "linux")
    assert _env.cpu_flags() == frozenset() and _env.cpu_has_bf16.__wrapped__() is False
    monkeypatch.setattr(_env.platform, "processor", lambda: "")
    monkeypatch.setattr(_env.platform, "machine", lambda: "x86_64")
    assert _env.cpu_name() == "x86_64"
    assert _env.cpu_description().startswith("x86_64, ") and _env.cpu_description().endswith(" logical cores")


def test_cpu_flags_are_those_of_cpuinfo():
    if not sys.platform.startswith("linux"):
        assert _env.cpu_flags() == frozenset()
        return
    with open("/proc/cpuinfo") as f:
        line = next((line for line in f if line.startswith("flags")), "flags:")
    assert _env.cpu_flags() == frozenset(line.split(":", 1)[1].split())
    assert _env.cpu_has_bf16() == bool(_env.cpu_flags() & {"avx512_bf16", "amx_bf16"})
