"""Small, atomic file helpers shared by every cached stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
"""Mode of files written through :func:`atomic_path` (what ``open`` would give under the umask;
``mkstemp`` alone makes them 0600, unreadable to others sharing a cache)."""
DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    A crash or exception leaves ``target`` untouched and removes the temporary file, so no
    reader ever sees a half-written file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, FILE_MODE)
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def share_files(folder: str | os.PathLike[str]) -> None:
    """Give every file under ``folder`` the mode ``atomic_path`` gives its files (readable by
    whoever may read the cache): libraries that write their own files (``save_pretrained``,
    safetensors) leave some at 0600."""
    for f in Path(folder).rglob("*"):
        if f.is_file():
            os.chmod(f, FILE_MODE)


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")
    return Path(target)


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value stored at ``path``."""
    return json.loads(Path(path).read_text())


def mtime(path: str | os.PathLike[str]) -> float:
    """``path``'s modification time, or 0.0 for a name that is no file (a Hub id, the packaged
    model): part of cache keys that must notice a rewritten local checkpoint."""
    p = Path(path)
    return p.stat().st_mtime if p.exists() else 0.0


def results_dir(cache_root: str | os.PathLike[str], chapter: str) -> Path:
    """``<cache>/results/<chapter>``: the one place every stage keeps its cached results."""
    return Path(cache_root) / "results" / chapter


def cached_json(path: str | os.PathLike[str], compute: Callable[[], T]) -> T:
    """The JSON result stored at ``path``; if there is none, ``compute()`` it, store it
    atomically and return it. Every cached stage goes through here (or ``cached_frame``)."""
    path = Path(path)
    stored = read_stored(path)
    if stored is not MISSING:
        return stored
    value = compute()
    write_json(path, value)
    return value


MISSING = object()
"""What ``read_stored`` returns for a result that is absent or damaged."""


def read_stored(path: str | os.PathLike[str], keys: tuple[str, ...] = ()) -> Any:
    """The cached JSON value at ``path``, or ``MISSING`` when there is none or it is damaged
    (cut, garbled, or lacking ``keys``): a damaged result is reported in one line, so that its
    caller computes it again (``cached_json`` does)."""
    path = Path(path)
    if not path.exists():
        return MISSING
    try:
        value = read_json(path)
        if keys and not (isinstance(value, dict) and all(k in value for k in keys)):
            raise ValueError(f"missing {[k for k in keys if k not in (value or {})]}")
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        import warnings

        warnings.warn(f"cached result {path} is damaged ({type(exc).__name__}: "
                      f"{str(exc)[:80]}); computing it again", stacklevel=3)
        return MISSING


def cached_frame(path: str | os.PathLike[str], compute: Callable[[], Any],
                 meta: dict[str, Any] | None = None) -> Any:
    """``cached_json`` for a ``pandas.DataFrame``: stored as ``<path>.json`` (rows, columns and
    ``meta``) with a ``<path>.csv`` copy for people; returns the frame."""
    import pandas as pd

    path = Path(path)
    target = path.with_suffix(".json")
    stored = read_stored(target, ("rows", "columns"))
    if stored is not MISSING:
        return pd.DataFrame(stored["rows"], columns=stored["columns"])
    frame = compute()
    with atomic_path(path.with_suffix(".csv")) as tmp:
        frame.to_csv(tmp, index=False)
    write_json(target, {**(meta or {}), "columns": list(frame.columns),
                        "rows": frame.to_dict(orient="records")})
    return frame


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A short, stable hex digest of JSON-serialisable ``parts`` (dict order ignored)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=_jsonable).encode())
        h.update(b"\x00")
    return h.hexdigest()[:length]


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` while the block runs; remove it afterwards.

    A second process (or thread) asking for the same lock waits until the first releases it.
    The lock file exists only while held (a waiter that wakes on a removed file retries).
    Where ``fcntl`` is unavailable (Windows) the block runs unlocked.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    while True:
        f = open(path, "a+b")  # noqa: SIM115 - closed below
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            f.close()
            raise
        if same:
            break
        f.close()  # the holder removed the file we waited on: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        f.close()
