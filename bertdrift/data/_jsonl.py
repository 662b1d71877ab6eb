"""Reading JSON and JSON-lines files with errors that name the file and line."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bertdrift.errors import DataError


def decode_error(path: Path, exc: UnicodeDecodeError) -> DataError:
    """A DataError naming the file, line and byte where ``path`` stops being UTF-8."""
    try:
        raw = Path(path).read_bytes()
        raw.decode("utf-8")
        pos = exc.start
    except UnicodeDecodeError as again:
        pos = again.start
    except OSError:
        raw, pos = b"", 0
    line = raw.count(b"\n", 0, pos) + 1
    col = pos - (raw.rfind(b"\n", 0, pos) + 1) + 1
    byte = f" (byte 0x{raw[pos]:02x})" if pos < len(raw) else ""
    return DataError(
        f"{path}:{line}: column {col}{byte} is not UTF-8 text; the file is damaged or in another "
        "encoding: re-download it, or convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )


@contextlib.contextmanager
def utf8_errors(path: Path) -> Iterator[None]:
    """Turn a ``UnicodeDecodeError`` raised in the block into a DataError naming the line."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise decode_error(path, exc) from exc


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """A whole text file; bytes that are not UTF-8 give a DataError naming the line."""
    with utf8_errors(path):
        return Path(path).read_text(encoding=encoding)


def empty_error(path: Path, what: str) -> DataError:
    """The error for a data file that holds no ``what`` (empty or truncated)."""
    size = Path(path).stat().st_size if Path(path).exists() else 0
    return DataError(
        f"{path}: holds no {what} ({size} bytes); the file is empty or truncated: re-download "
        "it, or point BERTDRIFT_DATA at a complete copy of the data mirror"
    )


def check_limit(limit: object) -> int:
    """``limit`` itself when it is a whole number >= 0; else a DataError saying so."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise DataError(f"limit={limit!r} is not valid: pass a whole number >= 0, or None for "
                        "every row")
    return limit


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON-lines file."""
    with utf8_errors(path), open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno}); fix or "
                    "re-download the file"
                ) from exc
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object per line; fix the file")
            yield lineno, obj


def read_json(path: Path) -> Any:
    """Load a whole JSON file; a syntax error names the file and line."""
    try:
        with utf8_errors(path), open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); fix or "
            "re-download the file"
        ) from exc


def require(path: Path, lineno: int, obj: dict[str, Any], *keys: str) -> None:
    """Raise a DataError naming the file and line when ``obj`` lacks one of ``keys``."""
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(
            f"{path}:{lineno}: missing field(s) {', '.join(missing)}; fix or re-download the file"
        )
