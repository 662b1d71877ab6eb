"""Finding a data file: the data directory, then the download cache, then the official source.

``resolve("ud-ewt/en_ewt-ud-dev.conllu")`` returns a local path. The relative path is that of the
offline mirror (see the data README). When the file is in neither the data directory nor the
download cache (``<cache>/downloads/<relpath>``), it is downloaded from its official URL into a
temporary file, its SHA-256 is checked when known, and only then is it renamed into the cache.
Offline (no URL, ``HF_HUB_OFFLINE``/``BERTDRIFT_OFFLINE`` set, or no network) one ``DataError``
says which file is missing, where it was looked for, and what to do.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from bertdrift import config
from bertdrift.config import cache_dir
from bertdrift.errors import DataError, MissingDataError
from bertdrift.io import atomic_path

UD_BASE = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.16"
GUM_BASE = "https://raw.githubusercontent.com/amir-zeldes/gum/V11.1.0"
NLTK_BASE = "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora"
DPR_BASE = "http://www.hlt.utdallas.edu/~vince/data/emnlp12"

# relpath -> (official URL or None, sha256 or None). A sha256 is pinned only where the mirror
# file is byte-identical to the official release file.
OFFICIAL: dict[str, tuple[str | None, str | None]] = {
    "ud-ewt/en_ewt-ud-train.conllu": (
        f"{UD_BASE}/en_ewt-ud-train.conllu",
        "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
    ),
    "ud-ewt/en_ewt-ud-dev.conllu": (
        f"{UD_BASE}/en_ewt-ud-dev.conllu",
        "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
    ),
    "ud-ewt/en_ewt-ud-test.conllu": (
        f"{UD_BASE}/en_ewt-ud-test.conllu",
        "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
    ),
    "squad-v1.1/dev-v1.1.json": (
        "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
        "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
    ),
    "gum/splits.md": (f"{GUM_BASE}/splits.md", None),
    "nltk/brown.zip": (f"{NLTK_BASE}/brown.zip", None),
    "dpr/train.c.txt": (f"{DPR_BASE}/train.c.txt", None),
    "dpr/test.c.txt": (f"{DPR_BASE}/test.c.txt", None),
    "dpr/WSCollection.xml": (
        "https://cs.nyu.edu/faculty/davise/papers/WinogradSchemas/WSCollection.xml",
        None,
    ),
}

HINTS = {
    "semeval2010-task8": "get SemEval-2010 Task 8 (TRAIN_FILE.TXT, TEST_FILE_FULL.TXT) from the "
    "official release (semeval2.fbk.eu, task 8) and place it under semeval2010-task8/",
    "spr2": "get SPR2 from decomp.io (protoroles_eng_ud1.2_11082016.tsv) and the derived "
    "spr2_ud1.2_sentences.jsonl from the bertdrift data mirror",
    "ewt-srl": "ewt_propbank_srl.*.jsonl are derived from propbank-release + UD EWT; use the "
    "bertdrift data mirror",
    "mnli": "the offline MNLI files come from the bertdrift data mirror; online, the loader uses "
    "datasets.load_dataset('nyu-mll/glue', 'mnli')",
}


def official_url(relpath: str) -> tuple[str | None, str | None]:
    """The official (URL, sha256) of a mirror-relative path, ``(None, None)`` when unknown."""
    if relpath in OFFICIAL:
        return OFFICIAL[relpath]
    # GUM's repository also carries the GENTLE (test2) documents; coref files sit in coref/conll
    if relpath.startswith(("gum/dep/", "gum/const/")):
        return f"{GUM_BASE}/{relpath[len('gum/'):]}", None
    if relpath.startswith("gum/coref/"):
        return f"{GUM_BASE}/coref/conll/{relpath[len('gum/coref/'):]}", None
    return None, None


def offline() -> bool:
    """True when downloads must not be attempted (``BERTDRIFT_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    for var in ("BERTDRIFT_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "0").lower() not in ("0", "", "false", "no"):
            return True
    return False


def local_path(relpath: str, *, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The file in the data directory or the download cache, or ``None``."""
    for base in (config.data_dir(data_dir), cache_dir() / "downloads"):
        candidate = base / relpath
        if candidate.exists():
            return candidate
    return None


def resolve(
    relpath: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    sha256: str | None = None,
    hint: str | None = None,
) -> Path:
    """Return a local path for ``relpath`` (data directory → download cache → official URL).

    ``url``/``sha256`` default to the official source known for ``relpath``.
    """
    found = local_path(relpath, data_dir=data_dir)
    if found is not None:
        return found
    if url is None:
        url, known_sha = official_url(relpath)
        sha256 = sha256 or known_sha
    target = cache_dir() / "downloads" / relpath
    where = f"{config.data_dir(data_dir)} and {cache_dir() / 'downloads'}"
    if url is None or offline():
        reason = "no official download URL is known" if url is None else "downloads are off"
        extra = hint or HINTS.get(relpath.split("/", 1)[0], "")
        problem = data_dir_problem(relpath, data_dir)
        problem = f"{problem}; " if problem else ""
        raise MissingDataError(
            f"data file {relpath!r} is missing: {problem}looked in {where}; {reason}. Set "
            "BERTDRIFT_DATA "
            f"to a directory holding it (the bertdrift data mirror), or go online "
            f"(unset HF_HUB_OFFLINE/BERTDRIFT_OFFLINE). {extra}".strip()
        )
    download(url, target, sha256=sha256)
    return target


def data_dir_problem(relpath: str, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """What is wrong with a data directory that was set but lacks ``relpath``, if we can tell:
    it does not exist, is a file, or is one level too deep or too high in the mirror."""
    raw = data_dir or os.environ.get("BERTDRIFT_DATA")
    if not raw:
        return None
    setting = "data_dir" if data_dir else "BERTDRIFT_DATA"
    root = config.data_dir(data_dir)
    shown = f"{setting}={str(raw)!r}"
    if str(raw) != str(root):
        shown += f" (resolved to {root} from the current folder {Path.cwd()})"
    fix = f"set {setting} to the absolute path of the data mirror (the folder holding ud-ewt/, "
    fix += "mnli/, ...)"
    if not root.exists():
        return f"{shown} does not exist; {fix}"
    if not root.is_dir():
        return f"{shown} is a file, not a folder; {fix}"
    if (root.parent / relpath).exists():
        return (f"{shown} is one level too deep: {relpath} is in {root.parent}; set {setting} "
                f"to {root.parent}")
    inside = [p for p in sorted(root.iterdir()) if p.is_dir() and (p / relpath).exists()]
    if inside:
        return (f"{shown} is one level too high: {relpath} is in {inside[0]}; set {setting} to "
                f"{inside[0]}")
    return None


def download(url: str, target: Path, *, sha256: str | None = None, timeout: float = 60) -> Path:
    """Download ``url`` to ``target`` atomically; a checksum mismatch leaves nothing behind."""
    try:
        with atomic_path(target) as tmp:
            h = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    h.update(block)
                    out.write(block)
            if sha256 is not None and h.hexdigest() != sha256:
                raise DataError(
                    f"download of {url} has sha256 {h.hexdigest()}, expected {sha256}; nothing "
                    f"was kept in {target.parent}. Retry later, or place the official file in "
                    "the data directory (BERTDRIFT_DATA)"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise MissingDataError(
            f"could not download {url} to {target} ({type(exc).__name__}: {exc}); check your "
            "network, or set BERTDRIFT_DATA to a directory holding the file"
        ) from exc
    return target

