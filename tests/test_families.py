"""Every stage on seven encoder families: tiny random models built from their configs, with
tokenizers trained in the test (no Hub)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from _family_fixtures import FAMILY_NAMES, build_family

from bertdrift import families
from bertdrift.features import extract_features
from bertdrift.models import (
    copy_layers,
    encoder_layers,
    freeze_bottom,
    load_encoder,
    load_tokenizer,
)

MARKED = ("roberta", "albert", "deberta-v2", "modernbert")
"""Families whose tokenizer marks word starts (``Ġ`` byte-level BPE, ``▁`` SentencePiece)."""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {name: build_family(name, root / name) for name in FAMILY_NAMES}


def _load(checkpoints: dict[str, Path], name: str):
    return load_encoder(checkpoints[name]), load_tokenizer(checkpoints[name])


def _batch(tok, sentences: list[list[str]]) -> dict[str, torch.Tensor]:
    enc = tok(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    return dict(enc)


SENTENCES = [["the", "forces", "of", "nature", ":", "a", "cat", "sat"],
             ["they", "said", ":", "overpoweringly", "", "\u200b", "people", "went", "home"],
             ["dogs", "ran"]]


# -- tokenizers -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["roberta", "modernbert"])
def test_byte_level_tokenizers_mark_every_pre_split_word(checkpoints, name: str) -> None:
    tok = load_tokenizer(checkpoints[name])
    enc = tok(["the", "forces", "of", "nature"], is_split_into_words=True,
              add_special_tokens=False)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    firsts = [pieces[enc.word_ids().index(w)] for w in range(4)]
    assert all(p.startswith("Ġ") for p in firsts), pieces
    assert families.family_of(load_encoder(checkpoints[name])).prefix_space


def test_family_table_knows_each_family(checkpoints) -> None:
    for name in FAMILY_NAMES:
        model = load_encoder(checkpoints[name])
        fam = families.family_of(model)
        assert fam.name == name
        markers = families.marker_ids(load_tokenizer(checkpoints[name]))
        vocab = load_tokenizer(checkpoints[name]).get_vocab()
        assert markers == ({vocab[fam.word_start_marker]} if fam.word_start_marker else set())
    assert families.family_of("unknown-type").name == "bert"


# -- word pooling -----------------------------------------------------------------------------
def _reference_positions(tok, words: list[str]) -> tuple[list[list[int]], list[int]]:
    """Each word's pooled positions and the sentence's ids, from tokenising every word on its
    own: a word with no piece stands for the unknown token; a bare marker piece is skipped if
    the word has more."""
    markers = families.marker_ids(tok)
    pos, out, all_ids = 1, [], []  # after the leading special token
    for w in words:
        ids = tok([w], is_split_into_words=True, add_special_tokens=False)["input_ids"]
        if not ids:
            ids = tok([tok.unk_token], is_split_into_words=True,
                      add_special_tokens=False)["input_ids"]
        all_ids += ids
        where = [pos + i for i, t in enumerate(ids) if t not in markers] or \
            [pos + i for i in range(len(ids))]
        out.append(where)
        pos += len(ids)
    return out, [tok.cls_token_id, *all_ids, tok.sep_token_id]


def _pieces(tok, word: str) -> list[int]:
    return tok([word], is_split_into_words=True, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_word_pooling_matches_the_words(checkpoints, tmp_path: Path, name: str) -> None:
    model, tok = _load(checkpoints, name)
    assert len(_pieces(tok, "overpoweringly")) >= 3  # a word split into many pieces
    assert _pieces(tok, "") == []  # and one that tokenises to nothing
    for pooling in ("first", "last", "mean"):
        fs = extract_features(model, tok, SENTENCES, pooling=pooling, batch_size=2,
                              cache_root=tmp_path, progress=False)
        assert fs.n_words == sum(map(len, SENTENCES))
        for s, words in enumerate(SENTENCES):
            positions, ids = _reference_positions(tok, words)
            batch = {"input_ids": torch.tensor([ids]),
                     "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                     "token_type_ids": torch.zeros(1, len(ids), dtype=torch.long)}
            with torch.no_grad():
                hidden = model(**families.encoder_inputs(model, batch),
                               output_hidden_states=True).hidden_states
            pick = {"first": lambda h, p: h[0, p[0]], "last": lambda h, p: h[0, p[-1]],
                    "mean": lambda h, p: h[0, p].mean(0)}[pooling]
            expected = torch.stack([torch.stack([pick(h, p) for p in positions])
                                    for h in hidden], dim=1).numpy()
            np.testing.assert_allclose(fs.sentence(s).astype(np.float32), expected,
                                       atol=2e-2, rtol=2e-2)
            if name in MARKED and ":" in words:  # ':' is pooled from ':', never a marker
                colon = positions[words.index(":")]
                assert tok.convert_ids_to_tokens([ids[p] for p in colon]) == [":"]


def test_feature_limit_excludes_the_position_offset(tmp_path: Path) -> None:
    path = build_family("roberta", tmp_path / "roberta", max_positions=24)  # 26 rows, 24 usable
    model, tok = load_encoder(path), load_tokenizer(path)
    long = [["the", "forces", "of", "nature"] * 12]  # 48 words, more than 24 tokens
    fs = extract_features(model, tok, long, cache_root=tmp_path / "f", progress=False)
    assert fs.n_words == 48


# -- running blocks, freezing, replacing ------------------------------------------------------
@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_blocks_run_as_the_models_forward(checkpoints, name: str) -> None:
    model, tok = _load(checkpoints, name)
    batch = _batch(tok, SENTENCES)
    mask = batch["attention_mask"].bool()
    with torch.no_grad():
        full = model(**families.encoder_inputs(model, batch)).last_hidden_state
        n = len(encoder_layers(model))
        for k in range(n + 1):
            h = families.embed(model, batch)
            h = families.run_blocks(model, h, batch["attention_mask"], 0, k)
            h = families.run_blocks(model, h, batch["attention_mask"], k, n)
            h = families.finish(model, h)
            torch.testing.assert_close(h[mask], full[mask], atol=1e-5, rtol=1e-4)


def _prefix(model, batch, k: int) -> torch.Tensor:
    with torch.no_grad():
        h = families.embed(model, batch)
        return families.run_blocks(model, h, batch["attention_mask"], 0, k)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_freezing_keeps_the_frozen_output_fixed(checkpoints, name: str) -> None:
    model, tok = _load(checkpoints, name)
    assert freeze_bottom(model, 0) is model  # k = 0 freezes nothing, on every family
    k = 1
    freeze_bottom(model, k)
    model.train()
    batch = _batch(tok, SENTENCES)
    before = _prefix(model.eval(), batch, k)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    loss = model(**families.encoder_inputs(model, batch)).last_hidden_state.pow(2).mean()
    if not loss.requires_grad:  # ALBERT: its one shared block is the bottom block
        assert len(encoder_layers(model)) == k
        return
    loss.backward()
    opt.step()
    after = _prefix(model.eval(), batch, k)
    torch.testing.assert_close(after, before)
    for module in families.bottom_extras(model):
        assert not any(p.requires_grad for p in module.parameters())


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_copy_layers_reverts_what_the_layers_depend_on(checkpoints, name: str) -> None:
    source, tok = _load(checkpoints, name)
    target = copy.deepcopy(source)
    keep = {id(p) for p in families.embeddings(target).parameters()}
    with torch.no_grad():
        for p in target.parameters():
            if id(p) not in keep:
                p.add_(0.5)
    n = len(encoder_layers(target))
    copy_layers(source, target, list(range(n)))
    batch = _batch(tok, SENTENCES)
    with torch.no_grad():
        a = source(**families.encoder_inputs(source, batch)).last_hidden_state
        b = target(**families.encoder_inputs(target, batch)).last_hidden_state
    torch.testing.assert_close(a, b)


def test_albert_shared_layers_are_one_block(checkpoints) -> None:
    model = load_encoder(checkpoints["albert"])
    assert len(encoder_layers(model)) == families.num_blocks(model.config) == 1
    assert model.config.num_hidden_layers == 2


def test_token_types_reach_only_families_that_use_them(checkpoints) -> None:
    batch = {"input_ids": torch.ones(1, 3, dtype=torch.long),
             "attention_mask": torch.ones(1, 3, dtype=torch.long),
             "token_type_ids": torch.zeros(1, 3, dtype=torch.long)}
    uses = {name: "token_type_ids" in families.encoder_inputs(load_encoder(path), batch)
            for name, path in checkpoints.items()}
    assert uses == {"bert": True, "roberta": False, "distilbert": False, "albert": True,
                    "electra": True, "deberta-v2": False, "modernbert": False}


def test_weight_decay_spares_every_norm(checkpoints) -> None:
    from bertdrift.finetune.loop import _param_groups
    from bertdrift.finetune.tasks import TaskModel

    model = load_encoder(checkpoints["modernbert"])
    task_model = TaskModel(model, torch.nn.Linear(32, 2), "mnli", {})
    groups = _param_groups(task_model, 1e-4, None, 0.01)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    names = [n for n, p in task_model.named_parameters() if id(p) in decayed]
    assert names and not any("norm" in n for n in names), names
