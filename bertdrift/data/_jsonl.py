"""Reading JSON and JSON-lines files with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bertdrift.errors import DataError


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON-lines file."""
    with open(path, encoding="utf-8") as f:
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
        with open(path, encoding="utf-8") as f:
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
