from __future__ import annotations

import numpy as np
import pytest
import torch

from bertdrift import features
from bertdrift.errors import ConfigError
from bertdrift.features import extract_features
from bertdrift.models import tiny_bert

SENTS = [
    ["The", "cat", "sat", "on", "the", "mat", "."],
    ["Unbelievably", ",", "tokenisation", "splits", "words"],
    ["Hi"],
    ["a", "\u200b", "zero-width", "word"],
    ["Another", "sentence", "with", "several", "more", "words", "in", "it", "today"],
] * 3



def reference(model, tok, words, pooling):
    enc = tok(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
    ids = enc.word_ids(0)
    out = []
    for w in range(len(words)):
        pos = [t for t, i in enumerate(ids) if i == w]
        rows = [h[0, pos] for h in hs]
        if pooling == "first":
            out.append(torch.stack([r[0] for r in rows]))
        elif pooling == "last":
            out.append(torch.stack([r[-1] for r in rows]))
        else:
            out.append(torch.stack([r.mean(0) for r in rows]))
    return torch.stack(out).numpy()


@pytest.mark.parametrize("pooling", ["first", "mean", "last"])
def test_pooled_vectors_match_a_direct_forward_pass(model, tok, tmp_path, pooling):
    fs = extract_features(model, tok, SENTS, pooling=pooling, batch_size=4, cache_root=tmp_path,
                          progress=False)
    assert fs.array.shape == (sum(map(len, SENTS)), 3, 32)
    assert fs.array.dtype == np.float16
    for i in (0, 1, 4):
        ref = reference(model, tok, SENTS[i], pooling)
        np.testing.assert_allclose(fs.sentence(i).astype(np.float32), ref, atol=2e-3, rtol=2e-3)


def test_long_sentences_are_split_into_windows(model, tok, tmp_path):
    long = [["word"] * 50 + ["end"]]
    fs = extract_features(model, tok, long, max_length=20, cache_root=tmp_path, progress=False)
    assert fs.n_words == 51
    assert np.isfinite(fs.array.astype(np.float32)).all()
    assert np.abs(fs.array.astype(np.float32)).sum(axis=(1, 2)).min() > 0


def test_second_call_is_cached_and_key_depends_on_weights(model, tok, tmp_path, monkeypatch):
    first = extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False)
    calls = []
    monkeypatch.setattr(features, "_build", lambda *a, **k: calls.append(1))
    again = extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False)
    assert calls == [] and again.path == first.path
    other = tiny_bert(num_layers=2, hidden=32, vocab=tok.vocab_size, seed=1)
    extract_features(other, tok, SENTS, cache_root=tmp_path, progress=False)
    assert calls == [1]


def test_interrupted_extraction_resumes_and_matches(model, tok, tmp_path, monkeypatch):
    full = extract_features(model, tok, SENTS, batch_size=1, cache_root=tmp_path / "a",
                            progress=False)
    monkeypatch.setattr(features, "SYNC_EVERY", 5)
    real = features._encode
    seen = {"n": 0}

    def flaky(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] == 13:
            raise KeyboardInterrupt
        yield from real(*args, **kwargs)

    monkeypatch.setattr(features, "_encode", flaky)
    with pytest.raises(KeyboardInterrupt):
        extract_features(model, tok, SENTS, batch_size=1, cache_root=tmp_path / "b",
                         progress=False)
    assert [p.name.endswith(".partial") for p in (tmp_path / "b").iterdir()] == [True]
    seen["n"] = -10_000  # no more failures
    resumed = extract_features(model, tok, SENTS, batch_size=1, cache_root=tmp_path / "b",
                               progress=False)
    # 10 batches were recorded before the failure, so only the remaining ones ran again
    assert seen["n"] == -10_000 + len(SENTS) - 10
    np.testing.assert_array_equal(np.asarray(resumed.array), np.asarray(full.array))


def test_truncated_or_corrupt_store_is_rebuilt(model, tok, tmp_path):
    fs = extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False)
    good = np.asarray(fs.array).copy()
    data = fs.path / features.FEATURES_FILE
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size - 10)
    rebuilt = extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False)
    np.testing.assert_array_equal(np.asarray(rebuilt.array), good)
    with open(data, "r+b") as f:  # flip bytes, keep size
        f.seek(100)
        f.write(b"\xff\xff\xff\xff")
    features._VERIFIED.clear()
    rebuilt = extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False)
    np.testing.assert_array_equal(np.asarray(rebuilt.array), good)


def test_bad_arguments_raise_clear_errors(model, tok, tmp_path):
    with pytest.raises(ConfigError, match="pooling"):
        extract_features(model, tok, SENTS, pooling="max", cache_root=tmp_path)
    with pytest.raises(Exception, match="sentence 0"):
        extract_features(model, tok, ["not a list of words"], cache_root=tmp_path)


def test_bf16_extraction_is_its_own_store_and_close_to_float32(model, tok, tmp_path):
    fp32 = extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False)
    bf16 = extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False,
                            precision="bf16")
    assert bf16.path != fp32.path  # the precision is part of the key
    a, b = fp32.array.astype(np.float32), bf16.array.astype(np.float32)
    assert not np.array_equal(a, b)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert cos.min() > 0.99  # bf16 keeps about 3 significant digits
    # None means float32 on a CPU: the same store as asking for it
    assert extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False,
                            precision="fp32").path == fp32.path
    with pytest.raises(ConfigError, match="precision"):
        extract_features(model, tok, SENTS, cache_root=tmp_path, progress=False,
                         precision="half")
