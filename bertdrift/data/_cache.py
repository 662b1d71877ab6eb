"""Caching parsed corpora as Arrow datasets, keyed by the source files' size and mtime.

Parsing the larger corpora (UD train, GUM) takes seconds; the parsed ``datasets.Dataset`` is
saved under ``<cache>/datasets/<name>-<key>/`` (Arrow files, never pickle) in a temporary folder
that is renamed into place only when complete. Any change in a source file (size or mtime), in
the loader arguments or in ``PARSER_VERSION`` gives a new key.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets as hf_progress
from datasets import Dataset, load_from_disk

from bertdrift.config import cache_dir
from bertdrift.io import DIR_MODE, stable_hash

PARSER_VERSION = 2
"""2: CoNLL-U trees are checked (one root, no cycles); empty files are errors."""


def file_key(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of each file: cheap, and changes whenever a file does."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return out


def cached_dataset(
    name: str, paths: Sequence[Path], params: Any, build: Callable[[], Dataset]
) -> Dataset:
    """Return the cached dataset for (name, files, params), building and storing it if absent.

    Set ``BERTDRIFT_NO_DATA_CACHE=1`` to always rebuild (nothing is written then). An empty
    dataset is never stored, and a cache folder that cannot be written (read-only, full, under a
    file) only costs the re-parse: the dataset is returned from memory.
    """
    if os.environ.get("BERTDRIFT_NO_DATA_CACHE", "0") not in ("0", ""):
        return build()
    key = stable_hash(PARSER_VERSION, name, file_key(paths), params)
    target = cache_dir() / "datasets" / f"{name}-{key}"
    if (target / "dataset_info.json").exists():
        with contextlib.suppress(Exception):  # a damaged cache entry is rebuilt below
            return load_from_disk(str(target))
    ds = build()
    if len(ds) == 0:
        return ds  # an entry with no shards could never be loaded again
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        os.chmod(tmp, DIR_MODE)  # mkdtemp makes it 0700: others sharing the cache could not read
    except OSError:
        return ds
    was_disabled = hf_progress.are_progress_bars_disabled()
    hf_progress.disable_progress_bars()
    try:
        ds.save_to_disk(str(tmp))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return ds
    finally:
        if not was_disabled:
            hf_progress.enable_progress_bars()
    return load_from_disk(str(target))
