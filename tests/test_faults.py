"""Fault injection: bad inputs, damaged caches and interrupted runs found in a hostile try-out
(issue 15). Each test fails on the code before the fix: corrupt copies of small real files in a
temporary data folder, killed subprocesses, unwritable or full cache folders (simulated, since
tests may run as root), concurrent extractions."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bertdrift import features
from bertdrift.errors import CacheError, ConfigError, DataError, ModelError
from bertdrift.features import extract_features
from bertdrift.models import load_tokenizer, tiny_bert

ROOT = Path(__file__).resolve().parents[1]
WORDS = [["The", "cat", "sat", "on", "the", "mat", "."], ["Hi", "there"],
         ["Another", "sentence", "with", "several", "more", "words"]] * 4



@pytest.fixture(scope="module")
def ewt_dev(data_dir):
    from bertdrift.data import read_conllu

    return [s["tokens"] for s in read_conllu(data_dir / "ud-ewt" / "en_ewt-ud-dev.conllu",
                                             limit=120)]


def _no_zero_rows(fs) -> bool:
    arr = np.asarray(fs.array, dtype=np.float32).reshape(fs.n_words, -1)
    return bool(np.abs(arr).sum(axis=1).min() > 0)


# -- case 1: resume after a change of batch size -------------------------------------------------
def test_resume_with_another_batch_size_recomputes(model, tok, ewt_dev, tmp_path, monkeypatch):
    real, calls = features._encode, {"n": 0}

    def dies_after_20(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 22:
            raise KeyboardInterrupt  # the process is killed: 20 batches recorded
        yield from real(*args, **kwargs)

    monkeypatch.setattr(features, "SYNC_EVERY", 10)
    monkeypatch.setattr(features, "_encode", dies_after_20)
    with pytest.raises(KeyboardInterrupt):
        extract_features(model, tok, ewt_dev, batch_size=4, cache_root=tmp_path, progress=False)
    (partial,) = tmp_path.glob("*.partial")
    assert json.loads((partial / "progress.json").read_text())["batches_done"] == 20
    monkeypatch.setattr(features, "_encode", real)
    fs = extract_features(model, tok, ewt_dev, batch_size=16, cache_root=tmp_path,
                          progress=False)
    assert _no_zero_rows(fs)


def test_killed_extraction_resumed_with_smaller_batches_has_no_zero_vectors(
        model, tok, ewt_dev, tmp_path):
    corpus = tmp_path / "sentences.json"
    corpus.write_text(json.dumps(ewt_dev))
    store = tmp_path / "store"
    script = textwrap.dedent(f"""
        import json, time
        from bertdrift import features
        from bertdrift.models import load_tokenizer, tiny_bert
        tok = load_tokenizer()
        model = tiny_bert(num_layers=2, hidden=32, vocab=tok.vocab_size, seed=0)
        sents = json.loads(open({str(corpus)!r}).read())
        features.SYNC_EVERY = 5
        real = features._encode
        def slow(*a, **k):
            time.sleep(0.02)
            yield from real(*a, **k)
        features._encode = slow
        features.extract_features(model, tok, sents, batch_size=4, cache_root={str(store)!r},
                                  progress=False)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            prog = list(store.glob("*.partial/progress.json"))
            if prog and json.loads(prog[0].read_text() or "{}").get("batches_done", 0) >= 10:
                break
            assert proc.poll() is None, "the extraction ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    fs = extract_features(model, tok, ewt_dev, batch_size=16, cache_root=store, progress=False)
    assert fs.n_sentences == 120
    assert _no_zero_rows(fs)


# -- case 9: damaged store metadata is rebuilt, never trusted -----------------------------------
@pytest.mark.parametrize("damage", [
    "meta-empty-object", "meta-no-checksum", "meta-list", "offsets-empty", "offsets-same-size",
    "meta-n-layers", "meta-dim",
])
def test_damaged_store_metadata_is_rebuilt(model, tok, tmp_path, damage):
    fs = extract_features(model, tok, WORDS, cache_root=tmp_path, progress=False)
    good = np.asarray(fs.array).copy()
    meta_file, off_file = fs.path / "meta.json", fs.path / "offsets.npy"
    meta = json.loads(meta_file.read_text())
    if damage == "meta-empty-object":
        meta_file.write_text("{}")
    elif damage == "meta-no-checksum":
        meta.pop("checksum")
        meta_file.write_text(json.dumps(meta))
    elif damage == "meta-list":
        meta_file.write_text("[]")
    elif damage == "offsets-empty":
        off_file.write_bytes(b"")
    elif damage == "offsets-same-size":
        off = np.load(off_file)
        off[1:-1] = off[1:-1] + 1  # words shifted between sentences, same file size
        np.save(off_file, off)
    elif damage == "meta-n-layers":  # same product n_layers * dim, so the same data size
        meta_file.write_text(json.dumps({**meta, "n_layers": meta["n_layers"] * 2,
                                         "dim": meta["dim"] // 2}))
    else:
        meta_file.write_text(json.dumps({**meta, "dim": meta["dim"] * 3,
                                         "n_layers": 1}))
    features._VERIFIED.clear()  # as in a new process: nothing checked yet
    again = extract_features(model, tok, WORDS, cache_root=tmp_path, progress=False)
    assert (again.n_layers, again.dim) == (fs.n_layers, fs.dim)
    np.testing.assert_array_equal(again.offsets, fs.offsets)
    np.testing.assert_array_equal(np.asarray(again.array), good)


# -- case 10: two extractions of one key at once --------------------------------------------------
def test_concurrent_extractions_of_one_key_wait_for_each_other(model, tok, tmp_path,
                                                               monkeypatch):
    real = features._encode

    def slow(*args, **kwargs):
        time.sleep(0.05)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(features, "_encode", slow)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(extract_features(model, tok, WORDS, batch_size=1,
                                             cache_root=tmp_path, progress=False))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, features.FeatureSet) for r in results), results
    assert results[0].path == results[1].path  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir()) == [results[0].path.name]  # type: ignore


# -- case 13: empty inputs; case 4: unwritable or full feature cache ------------------------------
@pytest.mark.parametrize("sentences", [[], [[]], [[], []]])
def test_extracting_nothing_is_a_clear_error(model, tok, tmp_path, sentences):
    with pytest.raises(DataError, match="nothing to extract"):
        extract_features(model, tok, sentences, cache_root=tmp_path, progress=False)


def test_empty_sentences_among_others_get_no_rows(model, tok, tmp_path):
    fs = extract_features(model, tok, [["a", "b"], [], ["c"]], cache_root=tmp_path,
                          progress=False)
    assert fs.offsets.tolist() == [0, 2, 2, 3] and fs.sentence(1).shape[0] == 0


def test_feature_cache_under_a_file_names_bertdrift_cache(model, tok, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(CacheError, match="BERTDRIFT_CACHE"):
        extract_features(model, tok, WORDS, cache_root=blocker / "features", progress=False)


def test_full_disk_during_extraction_names_bertdrift_cache(model, tok, tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(features.os, "pwrite", full)
    with pytest.raises(CacheError, match="BERTDRIFT_CACHE") as info:
        extract_features(model, tok, WORDS, cache_root=tmp_path, progress=False)
    assert "MiB" in str(info.value) and isinstance(info.value, OSError)


def test_atomic_files_are_readable_by_others(tmp_path):
    from bertdrift.io import FILE_MODE, write_json

    path = write_json(tmp_path / "x.json", {"a": 1})
    assert path.stat().st_mode & 0o777 == FILE_MODE
    assert FILE_MODE & 0o044  # group/other can read under a usual umask


# -- case 5: bad settings are refused up front, naming the setting --------------------------------
@pytest.mark.parametrize(("override", "setting"), [
    ({"mnli_lr": float("nan")}, "mnli_lr"),
    ({"mnli_lr": float("inf")}, "mnli_lr"),
    ({"mnli_train_size": 0}, "mnli_train_size"),
    ({"parsing_eval_size": 0}, "parsing_eval_size"),
    ({"probe_epochs": 0}, "probe_epochs"),
    ({"probe_batch_size": 0}, "probe_batch_size"),
    ({"probe_lr": -1}, "probe_lr"),
    ({"probe_lr": float("nan")}, "probe_lr"),
    ({"probe_hidden": 0}, "probe_hidden"),
    ({"feature_batch_size": 0}, "feature_batch_size"),
    ({"feature_max_length": 0}, "feature_max_length"),
    ({"structural_rank": 0}, "structural_rank"),
    ({"ablation_ks": [99]}, "ablation_ks"),
    ({"ablation_ks": []}, "ablation_ks"),
    ({"mnli_warmup_ratio": 5}, "mnli_warmup_ratio"),
    ({"mnli_weight_decay": -0.1}, "mnli_weight_decay"),
    ({"parsing_head_lr": 0}, "parsing_head_lr"),
    ({"squad_stride": 0}, "squad_stride"),
    ({"squad_stride": 160}, "squad_stride"),
    ({"squad_eval_articles": 1000}, "squad_eval_articles"),
    ({"squad_eval_articles": 0}, "squad_eval_articles"),
    ({"model": ""}, "model"),
    ({"model": "   "}, "model"),
    ({"rsa_bootstrap": 0}, "rsa_bootstrap"),
    ({"ood_sentences": 0}, "ood_sentences"),
    ({"seeds": [-1]}, "seeds"),
    ({"seeds": [2**64]}, "seeds"),
    ({"probe_seeds": [0, -3]}, "probe_seeds"),
    ({"ablation_seeds": [2**40]}, "ablation_seeds"),
])
def test_bad_settings_are_config_errors_naming_the_setting(override, setting):
    from bertdrift.config import get_profile

    with pytest.raises(ConfigError, match=setting):
        get_profile("tiny", **override)


def test_tiny_and_paper_profiles_still_validate():
    from bertdrift.config import PAPER, TINY, get_profile

    assert get_profile("tiny") == TINY and get_profile("paper") == PAPER


def test_overrides_as_a_json_string_as_papermill_passes_them():
    from bertdrift.config import get_profile

    assert get_profile("tiny", '{"mnli_epochs": 1}').mnli.epochs == 1
    assert get_profile("tiny", {"mnli_epochs": 1}, probe_epochs=2).probe_epochs == 2
    assert get_profile("tiny", "").mnli == get_profile("tiny").mnli
    with pytest.raises(ConfigError, match="not a JSON object"):
        get_profile("tiny", "{mnli_epochs: 1}")
    with pytest.raises(ConfigError, match="dict"):
        get_profile("tiny", "[1, 2]")


def test_name_as_an_override_is_a_config_error():
    from bertdrift.config import get_profile

    with pytest.raises(ConfigError, match="--profile"):
        get_profile("tiny", name="x")


@pytest.mark.parametrize("args", [
    ["info", "--profile", "tiny", "--set", "name=x"],
    ["info", "--profile", "tiny", "--set", "mnli_lr=NaN"],
    ["finetune", "--task", "mnli", "--profile", "tiny", "--set", "mnli_train_size=0"],
])
def test_cli_bad_settings_exit_2_with_one_line(args, tmp_path, monkeypatch, capsys):
    from bertdrift.__main__ import main

    monkeypatch.setenv("BERTDRIFT_CACHE", str(tmp_path))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("bertdrift: error:") and "Traceback" not in err
    assert not (tmp_path / "finetuned").exists()  # no empty run folder


# -- data: corrupt copies of small real files in a temporary data folder -------------------------
UD_DEV = "ud-ewt/en_ewt-ud-dev.conllu"
FILES = {
    "ud": UD_DEV,
    "semeval": "semeval2010-task8/TRAIN_FILE.TXT",
    "mnli": "mnli/dev_matched.jsonl",
    "srl": "ewt-srl/ewt_propbank_srl.dev.jsonl",
}


def _load(kind: str, root: Path):
    from bertdrift import data

    return {"ud": lambda: data.load_ud("dev", data_dir=root),
            "semeval": lambda: data.load_semeval("train", data_dir=root),
            "mnli": lambda: data.load_mnli("dev_matched", data_dir=root),
            "srl": lambda: data.load_srl("dev", data_dir=root)}[kind]()


@pytest.fixture
def fake_data(data_dir, tmp_path, monkeypatch):
    """A writable data folder holding the first lines of real files; the cache is fresh."""
    monkeypatch.setenv("BERTDRIFT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"

    def put(relpath: str, lines: int | None = 60, transform=None) -> Path:
        src = (data_dir / relpath).read_bytes()
        if lines is not None:
            kept = src.splitlines(keepends=True)[:lines]
            if relpath.endswith(".conllu"):  # whole sentences only
                kept = kept[: max(i for i, line in enumerate(kept) if not line.strip()) + 1]
            src = b"".join(kept)
        dst = root / relpath
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(transform(src) if transform else src)
        return dst

    return root, put


@pytest.mark.parametrize("kind", sorted(FILES))
def test_empty_data_file_is_a_data_error_and_caches_nothing(fake_data, kind, tmp_path):
    root, put = fake_data
    put(FILES[kind], transform=lambda b: b"")
    for _ in range(2):
        with pytest.raises(DataError, match="empty or truncated") as info:
            _load(kind, root)
        assert FILES[kind].split("/")[1] in str(info.value)
    assert not list((tmp_path / "cache").glob("datasets/*"))


@pytest.mark.parametrize("kind", sorted(FILES))
def test_non_utf8_bytes_name_the_file_and_line(fake_data, kind):
    root, put = fake_data

    def spoil_line_5(raw: bytes) -> bytes:
        lines = raw.splitlines(keepends=True)
        lines[4] = b"\xff\xfe" + lines[4]
        return b"".join(lines)

    put(FILES[kind], transform=spoil_line_5)
    with pytest.raises(DataError, match=r":5: column 1 \(byte 0xff\) is not UTF-8"):
        _load(kind, root)


@pytest.mark.parametrize(("value", "shown"), [(None, "NoneType"), (["a", "list"], "list"),
                                              (3, "int")])
def test_mnli_fields_of_the_wrong_type_are_data_errors(fake_data, value, shown):
    root, put = fake_data

    def spoil(raw: bytes) -> bytes:
        lines = raw.splitlines(keepends=True)
        obj = json.loads(lines[2])
        obj["premise"] = value
        lines[2] = json.dumps(obj).encode() + b"\n"
        return b"".join(lines)

    put(FILES["mnli"], transform=spoil)
    with pytest.raises(DataError, match=rf"dev_matched.jsonl:3: premise must be a string, found "
                                        rf"{shown}"):
        _load("mnli", root)


def _set_heads(raw: bytes, heads: dict[int, int]) -> bytes:
    """Change HEAD of words (by line number, 1-based) in a CoNLL-U file."""
    lines = raw.splitlines(keepends=True)
    for lineno, head in heads.items():
        cols = lines[lineno - 1].decode().split("\t")
        cols[6] = str(head)
        lines[lineno - 1] = "\t".join(cols).encode()
    return b"".join(lines)


@pytest.mark.parametrize(("heads", "message"), [
    ({5: 2, 6: 1}, r"words \[1, 2\] form a cycle"),  # line 5 is word 1
    ({10: 0}, "2 words have HEAD 0"),            # word 6 becomes a second root
    ({8: 3}, "0 words have HEAD 0"),             # the root (word 4) hangs below word 3
])
def test_cyclic_or_multi_root_ud_heads_name_the_sentence(fake_data, heads, message):
    root, put = fake_data
    put(UD_DEV, transform=lambda raw: _set_heads(raw, heads))
    with pytest.raises(DataError, match=message) as info:
        _load("ud", root)
    assert "en_ewt-ud-dev.conllu:1: sentence weblog-blogspot.com_nominations" in str(info.value)


def test_unwritable_dataset_cache_still_loads(data_dir, tmp_path, monkeypatch):
    from bertdrift import data

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("BERTDRIFT_CACHE", str(blocker / "cache"))
    assert len(data.load_ud("dev", data_dir=data_dir, limit=5)) == 5


# -- cases 7 and 11: checkpoints without tokenizer files, misleading model errors ----------------
def test_checkpoint_without_tokenizer_files_is_a_model_error(tmp_path):

    tiny_bert(vocab=30522).save_pretrained(tmp_path / "ckpt")  # weights + config, no tokenizer
    with pytest.raises(ModelError, match="lacks its tokenizer files"):
        load_tokenizer(tmp_path / "ckpt")


def test_checkpoint_with_its_tokenizer_loads(tok, tmp_path):

    tiny_bert(vocab=tok.vocab_size).save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    assert len(load_tokenizer(tmp_path / "ckpt")) == len(tok)


@pytest.mark.parametrize(("name", "message"), [
    ("/no/such/dir", "does not exist"),
    ("./no/such/dir", "does not exist"),
    ("", "model name is empty"),
    ("  ", "model name is empty"),
])
def test_model_errors_say_what_is_wrong(name, message, monkeypatch):
    from bertdrift.models import load_encoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=message) as info:
        load_encoder(name)
    assert "HF_HUB_OFFLINE" not in str(info.value)


def test_model_folder_without_config_or_a_file_is_named(tmp_path):
    from bertdrift.models import load_encoder

    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="has no config.json"):
        load_encoder(tmp_path / "empty")
    with pytest.raises(ModelError, match="is a file"):
        load_encoder(tmp_path / "weights.bin")


# -- case 12: the data folder setting ------------------------------------------------------------
@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BERTDRIFT_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize(("where", "message"), [
    ("missing", "does not exist"),
    ("file", "is a file, not a folder"),
    ("too-deep", "one level too deep"),
    ("too-high", "one level too high"),
])
def test_a_wrong_data_folder_says_what_is_wrong(data_dir, offline_cache, where, message,
                                                monkeypatch):
    from bertdrift.data.sources import resolve

    tmp = offline_cache
    (tmp / "a-file").write_text("")
    (tmp / "high" / "data" / "ud-ewt").mkdir(parents=True)
    (tmp / "high" / "data" / "ud-ewt" / "en_ewt-ud-dev.conllu").write_text("")
    value = {"missing": str(tmp / "nope"), "file": str(tmp / "a-file"),
             "too-deep": str(data_dir / "ud-ewt"), "too-high": str(tmp / "high")}[where]
    monkeypatch.setenv("BERTDRIFT_DATA", value)
    with pytest.raises(DataError, match=message) as info:
        resolve(UD_DEV)
    assert "BERTDRIFT_DATA" in str(info.value)


def test_relative_data_folder_is_made_absolute_for_the_chapters(data_dir, offline_cache,
                                                                monkeypatch, capsys):
    from bertdrift.__main__ import main

    monkeypatch.chdir(data_dir.parent)
    monkeypatch.setenv("BERTDRIFT_DATA", data_dir.name)
    monkeypatch.setenv("BERTDRIFT_CACHE", "rel-cache")
    assert main(["info", "--profile", "tiny"]) == 0
    out = json.loads(capsys.readouterr().out)
    # (resolved on both sides: the data folder may be reached through a symbolic link)
    assert Path(out["data_path"]).resolve() == data_dir.resolve()
    # the kernels inherit the environment and start in notebooks/: it must already be absolute
    assert os.path.isabs(os.environ["BERTDRIFT_DATA"])
    assert Path(os.environ["BERTDRIFT_DATA"]).resolve() == data_dir.resolve()
    assert os.path.isabs(os.environ["BERTDRIFT_CACHE"])
    monkeypatch.chdir(offline_cache)
    from bertdrift.data.sources import resolve

    assert resolve(UD_DEV).exists()


# -- case 13: fine-tuning keys follow a local checkpoint's weights -------------------------------
def test_finetuning_key_changes_when_a_local_checkpoint_is_retrained(tok, tmp_path):
    from bertdrift import models
    from bertdrift.config import get_profile
    from bertdrift.finetune.runs import run_key

    ckpt = tmp_path / "ckpt"
    tiny_bert(vocab=tok.vocab_size, seed=0).save_pretrained(ckpt)
    profile = get_profile("tiny", model=str(ckpt))
    first = run_key("mnli", profile, freeze=0, seed=0, cache_frozen=True)
    assert run_key("mnli", profile, freeze=0, seed=0, cache_frozen=True) == first
    time.sleep(0.01)
    tiny_bert(vocab=tok.vocab_size, seed=1).save_pretrained(ckpt)  # same folder, new weights
    assert run_key("mnli", profile, freeze=0, seed=0, cache_frozen=True) != first
    # the packaged default and Hub ids are keyed by their name (no hashing of site-packages)
    assert models.model_identity("minilm") == "minilm"
    assert models.model_identity("bert-base-uncased") == "bert-base-uncased"


# -- found in the extended search -----------------------------------------------------------------
@pytest.mark.parametrize("loader", ["ud", "semeval", "mnli", "srl"])
@pytest.mark.parametrize("limit", [-1, 2.5, "10"])
def test_a_bad_limit_is_a_data_error_not_an_empty_or_bare_failure(data_dir, offline_cache,
                                                                  loader, limit):
    from bertdrift import data

    load = {"ud": data.load_ud, "semeval": data.load_semeval, "srl": data.load_srl,
            "mnli": lambda **k: data.load_mnli("dev_matched", **k)}[loader]
    with pytest.raises(DataError, match="limit="):
        load(data_dir=data_dir, limit=limit)


@pytest.mark.parametrize("setting", ["seeds", "probe_seeds"])
def test_repeated_seeds_are_refused(setting):
    from bertdrift.config import get_profile

    with pytest.raises(ConfigError, match=setting):
        get_profile("tiny", **{setting: [0, 0]})


@pytest.mark.parametrize("freeze", [-1, 7])
def test_a_bad_freeze_depth_is_refused_before_a_run_folder_exists(freeze, offline_cache):
    from bertdrift.config import get_profile
    from bertdrift.finetune import get_finetuned

    profile = get_profile("tiny", cache_dir=str(offline_cache / "c"))
    with pytest.raises(ConfigError, match="freeze"):
        get_finetuned("mnli", profile, freeze=freeze)
    assert not (offline_cache / "c" / "finetuned").exists()


def test_a_damaged_result_json_is_not_trusted(tmp_path):
    from bertdrift.finetune.runs import _read_result

    run = tmp_path / "run"
    (run / "encoder").mkdir(parents=True)
    (run / "encoder" / "config.json").write_text("{}")
    for text in ("", "{}", "[]", '{"metrics": 3, "history": []}'):
        (run / "result.json").write_text(text)
        assert _read_result("mnli", run) is None
    (run / "result.json").write_text('{"metrics": {"acc": 1.0}, "history": []}')
    assert _read_result("mnli", run).metrics == {"acc": 1.0}  # type: ignore[union-attr]
    (run / "encoder" / "config.json").unlink()  # result without its encoder: not complete
    assert _read_result("mnli", run) is None


def test_cli_interrupt_and_os_errors_are_one_line(monkeypatch, capsys):
    from bertdrift import __main__ as cli
    from bertdrift import config

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(config, "get_profile", interrupted)
    assert cli.main(["info"]) == 130
    assert "resume" in capsys.readouterr().err

    def disk(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(config, "get_profile", disk)
    assert cli.main(["info"]) == 2
    assert "BERTDRIFT_CACHE" in capsys.readouterr().err


def test_a_too_small_max_length_is_refused(model, tok, tmp_path):
    with pytest.raises(ConfigError, match="max_length"):
        extract_features(model, tok, WORDS, max_length=2, cache_root=tmp_path, progress=False)


@pytest.mark.parametrize("device", ["cuda:3", "cuda:x"])
def test_a_gpu_index_that_does_not_exist_is_refused(device, monkeypatch):
    import torch

    from bertdrift.config import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="1 CUDA GPU"):
        resolve_device(device)
    assert resolve_device("cuda:0") == "cuda:0"


def test_a_damaged_cached_result_is_recomputed_with_one_line(tmp_path):
    """A cut or garbled cached result (``io.cached_json`` / ``cached_frame``) is reported in
    one line and computed again, never trusted or left to fail on every call."""
    import pandas as pd

    from bertdrift.io import cached_frame, cached_json, read_json

    path = tmp_path / "r.json"
    path.write_text('{"a": [1, 2')  # cut mid-write
    with pytest.warns(UserWarning, match="damaged"):
        assert cached_json(path, lambda: {"a": [1, 2, 3]}) == {"a": [1, 2, 3]}
    assert read_json(path) == {"a": [1, 2, 3]}  # rewritten whole
    assert cached_json(path, lambda: 1 / 0) == {"a": [1, 2, 3]}  # then read, not recomputed
    frame = tmp_path / "f"
    (tmp_path / "f.json").write_text('{"columns": ["x"]}')  # no rows
    with pytest.warns(UserWarning, match="damaged"):
        out = cached_frame(frame, lambda: pd.DataFrame({"x": [1, 2]}))
    assert out["x"].tolist() == [1, 2]
    (tmp_path / "f.json").write_bytes(b"\xff\xfe garbage")
    with pytest.warns(UserWarning, match="damaged"):
        assert cached_frame(frame, lambda: pd.DataFrame({"x": [3]}))["x"].tolist() == [3]


def test_book_only_matching_no_chapter_is_an_error(tmp_path):
    from bertdrift import book
    from bertdrift.errors import BertdriftError

    with pytest.raises(BertdriftError, match="no chapter matches --only 99.*01_setup"):
        book.execute(tmp_path, "tiny", only=["99"])
    assert not (tmp_path / "src").exists()


def test_relative_folder_overrides_are_made_absolute_for_the_chapters(tmp_path, monkeypatch):
    from bertdrift.config import absolutize_overrides

    monkeypatch.chdir(tmp_path)
    out = absolutize_overrides({"cache_dir": "c", "data_dir": "../d", "seeds": [0]})
    assert out == {"cache_dir": str(tmp_path / "c"), "data_dir": str(tmp_path / "../d"),
                   "seeds": [0]}
    assert absolutize_overrides(None) == {}


def test_weights_files_are_readable_by_others(tmp_path):
    """safetensors and save_pretrained write their own files (0600); the cache's files get the
    mode every other cached file has."""
    from bertdrift.finetune.loop import save_weights
    from bertdrift.io import FILE_MODE, share_files
    from bertdrift.models import tiny_bert

    model = tiny_bert()
    save_weights(model, tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == FILE_MODE
    model.save_pretrained(tmp_path / "enc")
    share_files(tmp_path / "enc")
    assert all(f.stat().st_mode & 0o777 == FILE_MODE for f in (tmp_path / "enc").iterdir())


def test_one_finetuning_run_trains_once_when_asked_twice_at_once(tmp_path, monkeypatch):
    """Two callers asking for the same run at once: the second waits for the first (a lock
    per run key, as for extractions) instead of both writing one run folder."""
    import threading
    import time

    import bertdrift.finetune.runs as runs
    from bertdrift.config import get_profile

    active, most, lock = [0], [0], threading.Lock()

    def fake_train(*args, **kwargs):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return "trained"

    monkeypatch.setattr(runs, "train_task", fake_train)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    profile = get_profile("tiny", cache_dir=str(tmp_path))
    threads = [threading.Thread(target=runs.get_finetuned, args=("mnli", profile))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
