"""Assembles the platform wheel around a static lrtop binary (scripts/build-wheel runs it; see the README's
"The wheel" section).

    python scripts/assemble_wheel.py --binary .build/wheel/release/lrtop --out dist

1. The Python package is built by setuptools from python/ (its metadata, entry point and version: pyproject.toml and
   lrtop/_version.py), as a pure wheel and as the sdist, in a scratch copy so python/ gets no build litter.
2. The binary is stripped and the system libraries it links that a manylinux system need not have (OpenBLAS with
   its libgfortran, ncursesw with libtinfo, zlib) are grafted in as `auditwheel repair` does: copied into
   `lrtop.libs/` under names made unique by a hash of their bytes, the binary's and each other's needs rewritten to
   those names and their search paths pointed at that folder (patchelf). glibc, libm, libstdc++ and libgcc_s stay the
   system's (the manylinux policy's own libraries).
3. The tag is the honest one: manylinux_2_X where 2.X is the newest glibc symbol version the binary and the grafted
   libraries need, raised if their libstdc++ symbols need a newer one than the oldest system with that glibc has.
4. The wheel is the pure wheel's files plus `lrtop/bin/lrtop` and `lrtop.libs/`, with its WHEEL tag and RECORD
   rewritten; entries are dated SOURCE_DATE_EPOCH (or 1980), so the same inputs give the same bytes.
"""
from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The libraries a manylinux system provides (PEP 600 defers to auditwheel's policy; these are in every policy's list
# that concerns a binary like this one), plus the kernel's vDSO. Everything else the binary links is grafted.
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libgcc_s.so.1",
                    "libstdc++.so.6", "ld-linux-x86-64.so.2", "linux-vdso.so.1"}
# Libraries that come with the Swift toolchain, not the system: the wheel's binary must link none of them.
TOOLCHAIN_LIBRARY = re.compile(r"^(libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime)")
# The newest libstdc++ symbol version of the oldest mainstream distribution with each glibc (its default GCC):
# RHEL 8 (GCC 8), Debian 11 / Ubuntu 20.04 (GCC 10), RHEL 9 (GCC 11), Ubuntu 22.04 (GCC 12), Ubuntu 24.04 (GCC 14).
GLIBCXX_BY_GLIBC = [((2, 28), (3, 4, 25)), ((2, 31), (3, 4, 28)), ((2, 34), (3, 4, 29)), ((2, 35), (3, 4, 30)),
                    ((2, 39), (3, 4, 33))]
LIBS_DIR = "lrtop.libs"


def fail(message: str) -> None:
    sys.exit(f"build-wheel: {message}")


def run(*args: str, cwd: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def version() -> str:
    path = os.path.join(ROOT, "python", "lrtop", "_version.py")
    with open(path, encoding="utf-8") as f:
        for node in ast.parse(f.read(), path).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__version__":
                return ast.literal_eval(node.value)
    fail(f"no __version__ in {path}")
    return ""


def python_package(scratch: str) -> tuple[str, str]:
    """The pure wheel and the sdist setuptools builds from a copy of python/ (package, pyproject, README)."""
    try:
        from setuptools import build_meta
    except ImportError:
        fail(f"{sys.executable} has no setuptools: run scripts/build-wheel with a Python that has it (.ci/install's venv)")
    source = os.path.join(scratch, "python")
    os.makedirs(source)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(ROOT, "python", name), source)
    shutil.copytree(os.path.join(ROOT, "python", "lrtop"), os.path.join(source, "lrtop"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "bin"))
    out = os.path.join(scratch, "out")
    here = os.getcwd()
    os.chdir(source)
    # setuptools reports every file it copies, and warns of the metadata forms that newer versions prefer (which the
    # setuptools of a Python 3.10 or 3.11 venv building the sdist would not read).
    try:
        with open(os.devnull, "w") as quiet, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stdout, stderr, sys.stdout, sys.stderr = sys.stdout, sys.stderr, quiet, quiet
            try:
                wheel = build_meta.build_wheel(out)
                sdist = build_meta.build_sdist(out)
            finally:
                sys.stdout, sys.stderr = stdout, stderr
    finally:
        os.chdir(here)
    return os.path.join(out, wheel), os.path.join(out, sdist)


def linked_libraries(binary: str) -> dict[str, str]:
    """soname -> path of every library the binary loads (ldd: the whole closure), the vDSO left out."""
    libraries = {}
    for line in run("ldd", binary).splitlines():
        line = line.strip()
        if "=>" in line:
            name, _, rest = line.partition("=>")
            path = rest.strip().split(" (")[0].strip()
            if path == "not found":
                fail(f"{binary} needs {name.strip()}, which is not installed here")
            libraries[name.strip()] = path
        elif line.startswith("/"):
            libraries[os.path.basename(line.split(" (")[0])] = line.split(" (")[0]
    return {k: v for k, v in libraries.items() if not k.startswith("linux-vdso")}


def needed(path: str) -> list[str]:
    return run("patchelf", "--print-needed", path).split()


def version_needs(path: str, prefix: str) -> list[tuple[int, ...]]:
    """The symbol versions `path` requires whose names start with `prefix` (GLIBC_, GLIBCXX_), as tuples."""
    found = re.findall(r"\b" + prefix + r"_(\d+(?:\.\d+)+)\b", run("objdump", "-p", path))
    return [tuple(int(p) for p in v.split(".")) for v in found]


def manylinux_tag(files: list[str]) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    glibc = max((v for f in files for v in version_needs(f, "GLIBC")), default=(2, 17))
    glibcxx = max((v for f in files for v in version_needs(f, "GLIBCXX")), default=(3, 4))
    tagged = glibc
    if glibcxx > (3, 4):
        fits = [g for g, cxx in GLIBCXX_BY_GLIBC if cxx >= glibcxx]
        if not fits:
            fail(f"the binary needs libstdc++ GLIBCXX_{'.'.join(map(str, glibcxx))}, newer than any system this "
                 "script knows: build with an older toolchain")
        tagged = max(glibc, fits[0])
    return f"manylinux_{tagged[0]}_{tagged[1]}_x86_64", glibc, glibcxx


def point_at_grafted(path: str, renamed: dict[str, str], rpath: str) -> None:
    """Makes `path` load the grafted libraries by their new names from `rpath`. One change a patchelf call: patchelf
    0.14 (Debian 12's) writes a wrong RUNPATH when --replace-needed and --set-rpath come in one call."""
    run("patchelf", "--set-rpath", rpath, path)
    for old in needed(path):
        if old in renamed:
            run("patchelf", "--replace-needed", old, renamed[old], path)


def graft(binary: str, tree: str) -> tuple[str, list[str]]:
    """Strips `binary` into `tree` laid out as the wheel installs it (`lrtop/bin/lrtop`, `lrtop.libs/`), grafts the
    libraries it needs beyond the system's; returns the binary's path and the grafted libraries' paths."""
    for tool, package in (("patchelf", "patchelf"), ("strip", "binutils"), ("objdump", "binutils"), ("ldd", "libc-bin")):
        if shutil.which(tool) is None:
            fail(f"{tool} is not installed: apt-get install {package} (.ci/install does)")
    os.makedirs(os.path.join(tree, "lrtop", "bin"))
    stripped = os.path.join(tree, "lrtop", "bin", "lrtop")
    run("strip", "--strip-all", "-o", stripped, binary)
    libraries = linked_libraries(stripped)
    toolchain = sorted(name for name in libraries if TOOLCHAIN_LIBRARY.match(name))
    if toolchain:
        fail(f"{binary} links {', '.join(toolchain)} from the Swift toolchain: build it with --static-swift-stdlib")
    libs_dir = os.path.join(tree, LIBS_DIR)
    os.makedirs(libs_dir)
    renamed = {}
    for soname, path in sorted(libraries.items()):
        if soname in SYSTEM_LIBRARIES:
            continue
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:8]
        stem, _, rest = soname.partition(".so")
        renamed[soname] = f"{stem}-{digest}.so{rest}"
        shutil.copyfile(path, os.path.join(libs_dir, renamed[soname]))
        os.chmod(os.path.join(libs_dir, renamed[soname]), 0o755)
    grafted = [os.path.join(libs_dir, name) for name in renamed.values()]
    for lib in grafted:
        run("patchelf", "--set-soname", os.path.basename(lib), lib)
        point_at_grafted(lib, renamed, "$ORIGIN")
    point_at_grafted(stripped, renamed, f"$ORIGIN/../../{LIBS_DIR}")
    # What it now loads must be exactly the system's libraries and the grafted ones.
    for soname, path in linked_libraries(stripped).items():
        if soname not in SYSTEM_LIBRARIES and os.path.dirname(os.path.realpath(path)) != os.path.realpath(libs_dir):
            fail(f"after grafting, {soname} still loads from {path}")
    return stripped, grafted


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(pure: str, binary: str, grafted: list[str], tag: str, out_dir: str) -> str:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))   # 1980-01-01, the earliest a zip can say
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    with zipfile.ZipFile(pure) as source:
        dist_info = next(n.split("/")[0] for n in source.namelist() if n.endswith(".dist-info/WHEEL"))
        files = [(n, source.read(n), 0o644) for n in sorted(source.namelist())
                 if n not in (f"{dist_info}/WHEEL", f"{dist_info}/RECORD")]
    for path, name in [(binary, "lrtop/bin/lrtop")] + [(p, f"{LIBS_DIR}/{os.path.basename(p)}") for p in grafted]:
        with open(path, "rb") as f:
            files.append((name, f.read(), 0o755))
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: lrtop scripts/build-wheel\nRoot-Is-Purelib: false\nTag: py3-none-{tag}\n"
    files.append((f"{dist_info}/WHEEL", wheel_meta.encode(), 0o644))
    record = "".join(record_line(n, d) + "\n" for n, d, _ in files) + f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode(), 0o644))
    name = os.path.basename(pure).replace("-py3-none-any.whl", f"-py3-none-{tag}.whl")
    target = os.path.join(out_dir, name)
    partial = target + ".partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as wheel:
        for n, data, mode in files:
            info = zipfile.ZipInfo(n, date_time=stamp)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data, compresslevel=9)
    os.replace(partial, target)
    return target


def shown(path: str) -> str:
    """A path as a person reads it: relative when it is below the current folder."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True, help="the lrtop binary, built with --static-swift-stdlib")
    p.add_argument("--out", default=os.path.join(ROOT, "dist"), help="where the wheel and the sdist go")
    a = p.parse_args()
    if not os.access(a.binary, os.X_OK):
        fail(f"{a.binary} is not an executable file")
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lrtop-wheel-") as scratch:
        pure, sdist = python_package(scratch)
        if not os.path.basename(pure).startswith(f"lrtop-{version()}-"):
            fail(f"setuptools built {os.path.basename(pure)}, not version {version()}")
        binary, grafted = graft(a.binary, os.path.join(scratch, "tree"))
        tag, glibc, glibcxx = manylinux_tag([binary] + grafted)
        wheel = write_wheel(pure, binary, grafted, tag, a.out)
        shutil.copyfile(sdist, os.path.join(a.out, os.path.basename(sdist)))
        size = os.path.getsize(wheel)
    print(f"build-wheel: {shown(wheel)} ({size / 1e6:.1f} MB; needs glibc "
          f"{'.'.join(map(str, glibc))} and libstdc++ GLIBCXX_{'.'.join(map(str, glibcxx))}; grafted "
          f"{', '.join(sorted(os.path.basename(g) for g in grafted))})")
    print(f"build-wheel: {shown(os.path.join(a.out, os.path.basename(sdist)))} (the pure-Python sdist: the "
          "bridge, and a launcher that says how to get the binary)")


if __name__ == "__main__":
    main()
