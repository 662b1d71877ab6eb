"""Benchmark of the whole path: every chapter of a profile (``tiny`` by default) executed with a
fresh cache, then each chapter's time and share, its slowest cells (papermill records every
cell's duration) and the cache's size on disk.

A regression is found by running this and comparing with the README's table, not by a CI
time-out. Set ``--set precision=fp32`` to see what a CPU without native bf16 pays for the
arithmetic (the older vector units of such a CPU cost more; see the README). Usage::

    BERTDRIFT_DATA=/work/shared/data python benchmarks/book.py
    BERTDRIFT_DATA=/work/shared/data python benchmarks/book.py --only 03 --set precision=fp32
    python benchmarks/book.py --report /tmp/bench   # re-read an earlier run's notebooks

The cache is a fresh temporary folder unless ``--cache`` names one (an existing one measures a
warm run); ``--keep`` leaves it in place to inspect.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _cells(nb_path: Path, top: int) -> list[tuple[float, str]]:
    """The ``top`` slowest code cells of an executed notebook: (seconds, first code line)."""
    nb = nbformat.read(nb_path, as_version=4)
    rows = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        seconds = (cell.metadata.get("papermill") or {}).get("duration") or 0.0
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")]
        rows.append((float(seconds), (lines[0] if lines else "")[:70]))
    return sorted(rows, reverse=True)[:top]


def report(build: Path, timings: dict[str, float], top: int = 3) -> None:
    total = sum(timings.values())
    print(f"\n{'chapter':<22}{'seconds':>9}{'share':>8}")
    for stem, seconds in timings.items():
        print(f"{stem:<22}{seconds:>9.1f}{seconds / total:>8.1%}")
        nb = build / "src" / "notebooks" / f"{stem}.ipynb"
        if nb.exists():
            for sec, line in _cells(nb, top):
                if sec >= 1.0:
                    print(f"    {sec:>7.1f} s  {line}")
    print(f"{'total':<22}{total:>9.1f}  ({total / 60:.1f} min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--only", action="append", default=None)
    parser.add_argument("--build", type=Path, default=None, help="build folder (default: temp)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary cache")
    parser.add_argument("--top", type=int, default=3, help="slowest cells shown per chapter")
    parser.add_argument("--report", type=Path, default=None,
                        help="only print the report of an earlier run's build folder")
    args = parser.parse_args()

    from bertdrift.__main__ import _overrides
    from bertdrift.book import execute
    from bertdrift.io import read_json

    if args.report:  # timings.json is written at the end; a run still going has only cells
        path = args.report / "timings.json"
        timings = read_json(path) if path.exists() else {
            nb.stem: round(sum(sec for sec, _ in _cells(nb, 10**6)), 1)
            for nb in sorted((args.report / "src" / "notebooks").glob("*.ipynb"))}
        report(args.report, timings, args.top)
        return
    build = args.build or Path(tempfile.mkdtemp(prefix="bertdrift-bench-build-"))
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bertdrift-bench-cache-"))
    os.environ["BERTDRIFT_CACHE"] = str(cache)
    print(f"[bench] build {build}, cache {cache}", flush=True)
    start = time.perf_counter()
    try:
        timings = execute(build, args.profile, _overrides(args.set), only=args.only)
        report(build, timings, args.top)
        print(f"wall clock {time.perf_counter() - start:.0f} s; cache on disk "
              f"{_size(cache) / 1e9:.2f} GB")
        for sub in sorted(p for p in cache.iterdir() if p.is_dir()):
            print(f"    {sub.name:<12}{_size(sub) / 1e9:>7.2f} GB")
    finally:
        if args.cache is None and not args.keep:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
