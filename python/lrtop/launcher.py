"""`lrtop` on PATH and `python -m lrtop`: find the lrtop binary and `exec` it, as uv's `find_uv_bin` does.

The platform wheel ships the binary inside this package (`lrtop/bin/lrtop`, the system libraries it links beside it
in `lrtop.libs/`); the pure-Python sdist has none and says how to get one. Anything this package launches finds the
binary through `find_lrtop_bin()`. Nothing here imports torch: a viewer on a laptop needs only the binary.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:   # not imported at run time: the launcher starts with nothing but os and sys
    from typing import NoReturn, Optional

_PACKAGE = os.path.dirname(os.path.abspath(__file__))

NO_BINARY = ("lrtop: error: no lrtop binary in this install (a pure-Python lrtop: the bridge only): install the platform "
             "wheel (pip install lrtop on Linux x86-64 with glibc 2.35 or later; scripts/build-wheel in a clone of "
             "lrtop makes one), or build it in a clone with 'swift build -c release' and set LRTOP_BIN to it")


def find_lrtop_bin() -> Optional[str]:
    """The lrtop binary this package uses, or None when this install has none.

    In order: `$LRTOP_BIN` (a binary you chose), the one shipped in this package (the platform wheel), then a release
    or debug build of the source checkout this package sits in (an editable install from a clone)."""
    chosen = os.environ.get("LRTOP_BIN")
    if chosen:
        return chosen
    shipped = os.path.join(_PACKAGE, "bin", "lrtop")
    if os.path.isfile(shipped):
        return shipped
    checkout = os.path.dirname(os.path.dirname(_PACKAGE))
    if os.path.isfile(os.path.join(checkout, "Package.swift")):
        for config in ("release", "debug"):
            built = os.path.join(checkout, ".build", config, "lrtop")
            if os.access(built, os.X_OK):
                return built
    return None


def missing_cpu_features(cpuinfo: str = "/proc/cpuinfo") -> list:
    """The x86-64-v3 features the binary is compiled for (Package.swift: AVX2 and FMA) that this CPU lacks; empty
    when it has them or when this is not a Linux x86-64 machine that says (then the binary itself decides)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return [name for name in ("avx2", "fma") if name not in flags]
    except OSError:
        pass
    return []


def main() -> NoReturn:
    """Replaces this Python process with the binary (same pid, signals and exit status go straight to it)."""
    path = find_lrtop_bin()
    if path is None:
        sys.stderr.write(NO_BINARY + "\n")
        sys.exit(1)
    if not os.access(path, os.X_OK):
        origin = "LRTOP_BIN" if os.environ.get("LRTOP_BIN") == path else "this install's binary"
        sys.stderr.write(f"lrtop: error: {origin} {path} is not an executable file: build it, fix the path, "
                         "or reinstall the wheel\n")
        sys.exit(1)
    lacking = missing_cpu_features()
    if lacking:
        sys.stderr.write("lrtop: error: lrtop is built for x86-64-v3 CPUs (AVX2 and FMA: Intel Haswell, AMD Zen and "
                         f"later) and this CPU lacks {' and '.join(lacking)}, so it cannot run here\n")
        sys.exit(1)
    try:
        os.execv(path, [path, *sys.argv[1:]])
    except OSError as e:
        sys.stderr.write(f"lrtop: error: cannot run {path}: {e.strerror}\n")
        sys.exit(126)
