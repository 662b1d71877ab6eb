"""The activation store: every layer's word vectors for a corpus, on disk, in float16.

``extract_features(model, tokenizer, sentences)`` runs the encoder over word-tokenised sentences
in length-sorted, dynamically padded batches, pools subwords to words (first, mean or last
subword), and streams each batch to a float16 file of shape ``(n_words, n_layers, dim)`` (layer
0 is the embedding output). Peak memory is one batch, however large the corpus.

The store is keyed by a hash of the model weights, the tokenizer, the sentences and the pooling,
so asking twice returns the stored set. Work happens in ``<key>.partial/``: an interrupted run
resumes from its last recorded batch, and the directory is renamed into place only when
complete. A truncated or corrupted file (size or checksum mismatch) is detected and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from bertdrift.config import POOLINGS, cache_dir
from bertdrift.errors import BertdriftError, CacheError, ConfigError, DataError
from bertdrift.families import encoder_inputs, marker_ids, max_positions, word_positions
from bertdrift.io import file_lock, mtime, read_json, stable_hash, write_json
from bertdrift.models import weights_fingerprint

FEATURES_FILE = "features.f16"
SYNC_EVERY = 20
"""Batches between progress records (an interrupted run redoes at most this many)."""
_VERIFIED: set[tuple[str, float]] = set()


@dataclass(frozen=True)
class FeatureSet:
    """Word vectors of every layer for a corpus, memory-mapped from disk (the activation store).

    - ``array``: ``(n_words, n_layers, dim)`` float16, memory-mapped read-only; row ``w`` is
      one word (its subwords pooled by ``pooling``), layer 0 is the embedding output and layer
      ``n_layers - 1`` the encoder's last layer;
    - ``offsets``: ``(n_sentences + 1,)`` int64; sentence ``i``'s words are rows
      ``offsets[i]:offsets[i + 1]``;
    - ``path``: the store's folder (``features.f16``, ``offsets.npy``, ``meta.json``).

    Usage::

        fs = extract_features(model, tokenizer, [["The", "cat", "sat", "."]])
        fs.array.shape                # (4, 7, 384) for the packaged MiniLM
        fs.layer(6)[fs.offsets[0]:fs.offsets[1]]   # the first sentence at the top layer
    """

    path: Path
    offsets: np.ndarray
    n_layers: int
    dim: int
    pooling: str

    @property
    def n_sentences(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_words(self) -> int:
        return int(self.offsets[-1])

    @property
    def array(self) -> np.memmap:
        """float16 array of shape ``(n_words, n_layers, dim)``; layer 0 = embeddings."""
        return np.memmap(
            self.path / FEATURES_FILE,
            dtype=np.float16,
            mode="r",
            shape=(self.n_words, self.n_layers, self.dim),
        )

    def layer(self, index: int) -> np.ndarray:
        """All words' vectors at one layer, ``(n_words, dim)`` (a strided view)."""
        return self.array[:, index, :]

    def sentence(self, index: int) -> np.ndarray:
        """One sentence's vectors, ``(n_words_in_sentence, n_layers, dim)``."""
        return self.array[self.offsets[index] : self.offsets[index + 1]]

    def words_of(self, indices: Sequence[int]) -> np.ndarray:
        """Row indices of all words of the given sentences, in order."""
        return np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in indices])


def corpus_hash(sentences: Sequence[Sequence[str]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for words in sentences:
        h.update("\x1f".join(words).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def tokenizer_hash(tokenizer) -> str:
    """Hash of what maps words to ids (not of padding/truncation settings, which calls change)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return stable_hash(sorted(tokenizer.get_vocab().items()))
    spec = json.loads(backend.to_str())
    spec.pop("padding", None)
    spec.pop("truncation", None)
    return stable_hash(spec)


def _sequences(lengths: Sequence[int], limit: int, word_pieces: Sequence[np.ndarray]):
    """Split each sentence into word windows whose subword count fits ``limit``."""
    seqs: list[tuple[int, int, int]] = []  # (sentence, first word, end word)
    for i, pieces in enumerate(word_pieces):
        start, used = 0, 0
        for j, n in enumerate(pieces):
            if used + n > limit and j > start:
                seqs.append((i, start, j))
                start, used = j, 0
            used += int(n)
        if lengths[i] > start or lengths[i] == 0:
            seqs.append((i, start, lengths[i]))
    return seqs


def _clean(words: Sequence[str], unk: str, normalize) -> list[str]:
    """Words that normalise to nothing (zero-width spaces...) become the unknown token."""
    return [w if normalize(w).strip() else unk for w in words]


def _batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def extract_features(
    model: nn.Module,
    tokenizer,
    sentences: Sequence[Sequence[str]],
    *,
    pooling: str = "first",
    batch_size: int = 64,
    max_length: int | None = None,
    cache_root: str | os.PathLike[str] | None = None,
    device: str | None = None,
    progress: bool = True,
    desc: str = "features",
    precision: str | None = None,
) -> FeatureSet:
    """Return (computing and storing if needed) the word vectors of ``sentences``.

    ``sentences`` are lists of words. Sentences longer than ``max_length`` subwords (default:
    the model's limit) are cut into word windows encoded separately. ``precision``: ``"bf16"``
    runs the encoder under bf16 autocast, ``"fp32"`` in float32; ``None`` means bf16 on a GPU
    and float32 on a CPU. It is part of the store's key (``benchmarks/extract.py --precision``
    measures speed and agreement with float32).
    """
    if precision not in (None, "bf16", "fp32"):
        raise ConfigError(f"precision={precision!r} is not valid; choose 'bf16', 'fp32' or None")
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling={pooling!r} is not valid; choose one of {POOLINGS}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if max_length is not None and max_length < 3:
        raise ConfigError(f"max_length must be >= 3 subwords ([CLS], a word, [SEP]), got "
                          f"{max_length}; lower feature_max_length no further than 8")
    for i, s in enumerate(sentences):
        if isinstance(s, str) or not all(isinstance(w, str) for w in s):
            raise DataError(
                f"sentence {i} is not a list of word strings ({str(s)[:60]!r}); pass "
                "word-tokenised sentences, e.g. text.split()"
            )
    sentences = [list(s) for s in sentences]
    if sum(len(s) for s in sentences) == 0:
        raise DataError(
            f"nothing to extract: {len(sentences)} sentence(s) with no words in all; pass at "
            "least one non-empty word-tokenised sentence"
        )
    max_pos = max_positions(model.config)  # RoBERTa's table reserves 2 rows
    limit = min(max_length or max_pos, max_pos) - 2  # room for [CLS] and [SEP]
    root = Path(cache_root) if cache_root is not None else cache_dir() / "features"
    run_on = device or str(next(model.parameters()).device)
    if precision is None:
        precision = "fp32" if run_on == "cpu" else "bf16"
    key = stable_hash(
        weights_fingerprint(model), tokenizer_hash(tokenizer), corpus_hash(sentences), pooling,
        limit, *([] if precision == "fp32" else [precision]), length=24,
    )
    final = root / key
    expect = {"n_layers": int(model.config.num_hidden_layers) + 1,
              "dim": int(model.config.hidden_size), "pooling": pooling,
              "offsets": np.concatenate([[0], np.cumsum([len(s) for s in sentences])])}
    existing = _open(final, expect=expect)
    if existing is not None:
        return existing
    try:
        # one extraction per key at a time: a second caller waits, then reads the stored set
        with file_lock(root / f".{key}.lock"):
            existing = _open(final, expect=expect)
            if existing is not None:
                return existing
            if final.exists():
                shutil.rmtree(final)  # corrupt, truncated or inconsistent: rebuild
            return _build(model, tokenizer, sentences, final, pooling, batch_size, limit,
                          run_on, progress, desc, precision == "bf16")
    except OSError as exc:
        if isinstance(exc, BertdriftError):
            raise
        n_bytes = int(expect["offsets"][-1]) * expect["n_layers"] * expect["dim"] * 2
        raise CacheError(
            f"cannot write the feature store {final} ({type(exc).__name__}: {exc}); it needs "
            f"about {n_bytes / 2**20:.1f} MiB. Free disk space there, or point BERTDRIFT_CACHE "
            "(or the profile's cache_dir / cache_root=) at a writable folder with room"
        ) from exc


def _open(path: Path, verify: bool = True, expect: dict | None = None) -> FeatureSet | None:
    """The stored set at ``path``, or ``None`` when absent, damaged or not what ``expect``s.

    Every piece is checked: ``meta.json`` must be a complete object, ``offsets.npy`` a
    non-decreasing integer vector from 0, the data file the size they imply and its checksum the
    recorded one; ``expect`` (``n_layers``, ``dim``, ``pooling``, ``offsets`` derived from the
    model and the sentences) must match, so a same-size edit of any file is caught too.
    """
    meta_file = path / "meta.json"
    if not meta_file.exists():
        return None
    try:
        meta = read_json(meta_file)
        offsets = np.load(path / "offsets.npy", allow_pickle=False)
        n_layers, dim = int(meta["n_layers"]), int(meta["dim"])
        pooling, checksum = str(meta["pooling"]), str(meta["checksum"])
    except (ValueError, OSError, KeyError, TypeError, EOFError):
        return None
    if (offsets.ndim != 1 or len(offsets) < 2 or offsets.dtype.kind not in "iu"
            or offsets[0] != 0 or (np.diff(offsets) < 0).any() or n_layers < 1 or dim < 1):
        return None
    if expect is not None and (
            (n_layers, dim, pooling) != (expect["n_layers"], expect["dim"], expect["pooling"])
            or not np.array_equal(offsets, expect["offsets"])):
        return None
    data = path / FEATURES_FILE
    expected = int(offsets[-1]) * n_layers * dim * 2
    if not data.exists() or data.stat().st_size != expected:
        return None
    marker = (str(data), data.stat().st_mtime)
    if verify and marker not in _VERIFIED:
        if _checksum(data) != checksum:
            return None
        _VERIFIED.add(marker)
    return FeatureSet(path, offsets, n_layers, dim, pooling)


def _checksum(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def _build(model, tokenizer, sentences, final: Path, pooling: str, batch_size: int, limit: int,
           device: str, progress: bool, desc: str, bf16: bool = False) -> FeatureSet:
    model = model.to(device).eval()
    normalize = tokenizer.backend_tokenizer.normalizer
    norm = normalize.normalize_str if normalize is not None else (lambda w: w)
    unk = tokenizer.unk_token
    sentences = [_clean(s, unk, norm) for s in sentences]
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # subword count of every word, computed in blocks so memory stays flat
    pieces: list[np.ndarray] = []
    for start in range(0, len(sentences), 2048):
        block = sentences[start : start + 2048]
        enc = tokenizer(block, is_split_into_words=True, add_special_tokens=False)
        for b in range(len(block)):
            ids = enc.word_ids(b)
            count = np.bincount([w for w in ids if w is not None], minlength=len(block[b]))
            if len(block[b]) and not count.all():  # a word that tokenises to nothing
                words = [w if n else unk for w, n in zip(block[b], count, strict=True)]
                sentences[start + b] = words
                again = tokenizer([words], is_split_into_words=True, add_special_tokens=False)
                count = np.bincount([w for w in again.word_ids(0) if w is not None],
                                    minlength=len(words))
            pieces.append(count.astype(np.int32))
    seqs = _sequences(lengths, limit, pieces)
    n_tok = np.array([int(pieces[i][a:b].sum()) for i, a, b in seqs], dtype=np.int64)
    order = np.argsort(-n_tok, kind="stable")
    batches = _batches(order, batch_size)
    n_layers = int(model.config.num_hidden_layers) + 1
    markers = marker_ids(tokenizer)
    dim = int(model.config.hidden_size)

    partial = final.with_name(final.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    data = partial / FEATURES_FILE
    row_bytes = n_layers * dim * 2
    state_file = partial / "progress.json"
    # batches depend on batch_size: progress made with another one is discarded, not skipped
    plan = _plan_hash(batches)
    done = 0
    if state_file.exists() and data.exists():
        with contextlib.suppress(ValueError, KeyError, OSError, TypeError):
            state = read_json(state_file)
            if state.get("plan") == plan:
                done = min(int(state["batches_done"]), len(batches))
    with open(data, "r+b" if data.exists() else "w+b") as f:
        f.truncate(int(offsets[-1]) * row_bytes)
        fd = f.fileno()
        bar = tqdm(total=len(batches), initial=done, desc=desc, disable=not progress,
                   unit="batch")
        for b, batch in enumerate(batches):
            if b < done:
                continue
            items = [seqs[i] for i in batch]
            words = [sentences[s][a:e] for s, a, e in items]
            encoded = _encode(model, tokenizer, words, pooling, device, markers, bf16)
            for (s, a, _e), vecs in zip(items, encoded, strict=True):
                os.pwrite(fd, vecs.tobytes(), int(offsets[s] + a) * row_bytes)
            bar.update(1)
            if (b + 1) % SYNC_EVERY == 0 or b + 1 == len(batches):
                os.fsync(fd)
                write_json(state_file, {"batches_done": b + 1, "plan": plan})
        bar.close()
        os.fsync(fd)
    np.save(partial / "offsets.npy", offsets, allow_pickle=False)
    write_json(partial / "meta.json", {
        "n_layers": n_layers, "dim": dim, "pooling": pooling, "n_words": int(offsets[-1]),
        "n_sentences": len(sentences), "checksum": _checksum(data),
        "model": getattr(model.config, "_name_or_path", ""),
    })
    state_file.unlink(missing_ok=True)
    os.replace(partial, final)
    result = _open(final, expect={"n_layers": n_layers, "dim": dim, "pooling": pooling,
                                  "offsets": offsets})
    assert result is not None
    return result


def _plan_hash(batches: list[np.ndarray]) -> str:
    """Hash of the batch plan (which sequences each batch holds, in order)."""
    h = hashlib.blake2b(digest_size=16)
    for batch in batches:
        h.update(np.asarray(batch, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


@torch.inference_mode()
def _encode(model, tokenizer, words: list[list[str]], pooling: str, device: str,
            markers: set[int] | None = None, bf16: bool = False) -> Iterator[np.ndarray]:
    """Yield, for each word list, its pooled vectors ``(n_words, n_layers, dim)`` as float16
    (the encoder run under bf16 autocast when ``bf16``). A bare word-start marker piece
    (``markers``) is pooled only for a word that has no other."""
    enc = tokenizer(words, is_split_into_words=True, padding=True, return_tensors="pt")
    batch = {k: v.to(device) for k, v in encoder_inputs(model, dict(enc)).items()}
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
        out = model(**batch, output_hidden_states=True)
    hidden = out.hidden_states  # tuple of (B, T, d)
    B, T = enc["input_ids"].shape
    flat_word: list[int] = []
    positions: list[int] = []
    counts = [len(w) for w in words]
    base = np.concatenate([[0], np.cumsum(counts)])
    ids = enc["input_ids"].tolist()
    for b in range(B):
        per_word = word_positions(enc.word_ids(b), ids[b], counts[b], markers or set())
        for w, where in enumerate(per_word):
            for t in where:
                positions.append(b * T + t)
                flat_word.append(int(base[b]) + w)
    pos = torch.tensor(positions, device=device)
    word = torch.tensor(flat_word, device=device)
    n_words = int(base[-1])
    if pooling == "mean":
        ones = torch.ones(len(positions), device=device)
        count = torch.zeros(n_words, device=device).index_add_(0, word, ones).clamp_(min=1)
    else:
        # first subword: smallest position per word; last: largest (positions are increasing)
        sel = torch.full((n_words,), -1, dtype=torch.long, device=device)
        idx = torch.arange(len(positions), device=device)
        if pooling == "first":
            sel.scatter_reduce_(0, word, idx, reduce="amin", include_self=False)
        else:
            sel.scatter_reduce_(0, word, idx, reduce="amax", include_self=False)
        pick = pos[sel]
    layers = []
    for h in hidden:
        flat = h.reshape(B * T, -1)
        if pooling == "mean":
            summed = torch.zeros(n_words, flat.shape[1], device=device, dtype=torch.float32)
            summed.index_add_(0, word, flat.index_select(0, pos).float())
            layers.append(summed / count[:, None])
        else:
            layers.append(flat.index_select(0, pick))
    stacked = torch.stack(layers, dim=1).to(torch.float16).cpu().numpy()
    for b in range(B):
        yield stacked[base[b] : base[b + 1]]


_LOADED: dict[tuple[str, str, float], tuple[nn.Module, object]] = {}


def load_cached(model: str | os.PathLike[str], device: str = "cpu") -> tuple[nn.Module, object]:
    """Encoder and tokenizer of ``model`` (a name or folder); the last two stay loaded, so a
    chapter that compares one model with several others loads each once."""
    from bertdrift.models import load_encoder, load_tokenizer

    key = (str(model), device, mtime(model))
    if key not in _LOADED:
        while len(_LOADED) >= 2:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = (load_encoder(model, device=device), load_tokenizer(model))
    return _LOADED[key]


def features_identity(model: str | os.PathLike[str], profile: Any) -> dict[str, Any]:
    """What a cached result computed from ``model_features(model, ..., profile)`` depends on,
    besides the sentences: the model's identity (``models.model_identity``: a name, or a hash of
    a checkpoint folder's files) and the profile's pooling, length limit and precision. Found
    without loading the model, so a stage whose results are all cached never loads it."""
    from bertdrift.config import resolve_precision
    from bertdrift.models import model_identity

    return {"model": model_identity(str(model)), "pooling": profile.pooling,
            "max_length": profile.feature_max_length,
            "precision": resolve_precision(profile.precision, profile.device)}


@contextlib.contextmanager
def transient_features(model: str | os.PathLike[str], sentences: Sequence[Sequence[str]],
                       profile: Any, *, progress: bool = True, desc: str = "features"
                       ) -> Iterator[FeatureSet]:
    """``model_features`` whose store lives only inside the ``with`` block (in a temporary
    folder of the cache, removed on exit, also after an error): for a stage that caches its own
    results, so the cache keeps what later chapters read, not every layer of every word."""
    import tempfile

    root = profile.cache_path / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="features-") as tmp:
        yield model_features(model, sentences, profile, progress=progress, desc=desc,
                             cache_root=Path(tmp))


def model_features(model: str | os.PathLike[str], sentences: Sequence[Sequence[str]],
                   profile: Any, *, progress: bool = True, desc: str = "features",
                   cache_root: Path | None = None) -> FeatureSet:
    """The activation store of ``model`` on ``sentences`` with the profile's pooling, batch
    size, length limit, cache (or ``cache_root``) and device (extracted once, then read)::

        fs = model_features("minilm", [["A", "sentence", "."]], get_profile("tiny"))
        fs.array.shape  # (n_words, n_layers + 1, hidden), float16, memory-mapped
    """
    from bertdrift.config import resolve_device, resolve_precision

    device = resolve_device(profile.device)
    encoder, tokenizer = load_cached(model, device)
    return extract_features(encoder, tokenizer, sentences, pooling=profile.pooling,
                            batch_size=profile.feature_batch_size,
                            max_length=profile.feature_max_length,
                            cache_root=cache_root or profile.cache_path / "features",
                            device=device,
                            progress=progress, desc=desc,
                            precision=resolve_precision(profile.precision, profile.device))
