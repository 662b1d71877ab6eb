"""The book's stages on every encoder family: the three fine-tuning tasks (with a cached
frozen prefix equal to plain freezing), edge and structural probes, similarity and layer
replacement, on tiny random models with tokenizers trained in the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _family_fixtures import FAMILY_NAMES, build_family
from _finetune_fixtures import mnli_data, squad_data, ud_data

from bertdrift import families, get_profile
from bertdrift.ablations import revert_layers
from bertdrift.features import extract_features
from bertdrift.finetune import load_task_model, train_task
from bertdrift.models import encoder_layers, load_encoder, load_tokenizer
from bertdrift.probing import (
    EdgeProbeConfig,
    StructuralConfig,
    encode_targets,
    train_edge_probes,
    train_structural_probes,
    trees_from_ud,
)
from bertdrift.similarity import cka

SMALL = {"max_length": 48, "batch_size": 8, "epochs": 1, "lr": 1e-3, "train_size": 16,
         "eval_size": 6, "stride": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("family_stages")
    return {name: build_family(name, root / name) for name in FAMILY_NAMES}


def _profile(tmp_path: Path):
    over = {f"{t}_{k}": v for t in ("mnli", "squad", "parsing") for k, v in SMALL.items()}
    return get_profile("tiny", cache_dir=str(tmp_path / "cache"), device="cpu", **over)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_three_tasks_fine_tune_and_the_frozen_prefix_cache_is_exact(checkpoints, tmp_path,
                                                                   name: str) -> None:
    path = checkpoints[name]
    P = _profile(tmp_path)
    data = {"mnli": mnli_data(n_train=16, n_eval=6), "squad": squad_data(n_train=8, n_eval=4),
            "parsing": ud_data(n_train=16, n_eval=6)}
    for task, d in data.items():
        run = train_task(task, P, tmp_path / task, data=d, encoder=load_encoder(path),
                         tokenizer=load_tokenizer(path), progress=False)
        assert all(np.isfinite(v) for v in run.metrics.values()), (task, run.metrics)
        assert load_task_model(run).encoder.config.model_type == \
            load_encoder(path).config.model_type
    runs = {}
    for cache in (True, False):  # freeze the bottom block: cached prefix == plain freezing
        runs[cache] = train_task("parsing", P, tmp_path / f"frozen{cache}",
                                 data=ud_data(n_train=16, n_eval=6), encoder=load_encoder(path),
                                 tokenizer=load_tokenizer(path), progress=False, freeze=1,
                                 cache_frozen=cache)
    a = load_task_model(runs[True]).state_dict()
    b = load_task_model(runs[False]).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-3, msg=key)
    assert runs[True].metrics == pytest.approx(runs[False].metrics, abs=1e-6)


SENTENCES = [["the", "cat", "sat", "on", "the", "mat", "."],
             ["people", "said", ":", "dogs", "ran", "home"],
             ["a", "big", "bird", "flew", "over", "the", "house"],
             ["they", "saw", "many", "things", "in", "town", "today"]]
HEADS = [[2, 3, 0, 6, 6, 3, 3], [2, 0, 2, 5, 2, 5], [3, 3, 4, 0, 7, 7, 4],
         [2, 0, 4, 2, 6, 4, 2]]


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_probes_similarity_and_layer_replacement(checkpoints, tmp_path, name: str) -> None:
    path = checkpoints[name]
    model, tok = load_encoder(path), load_tokenizer(path)
    fs = extract_features(model, tok, SENTENCES, cache_root=tmp_path, progress=False)
    feats = torch.from_numpy(np.array(fs.array))
    starts = fs.offsets[:-1].tolist()
    rows = [{"tokens": s, "targets": [{"span1": [i, i + 1], "span2": None,
                                       "label": "long" if len(w) > 3 else "short"}
                                      for i, w in enumerate(s)]} for s in SENTENCES]
    spans = encode_targets(rows, ["long", "short"], starts, multilabel=False, single_span=True)
    edge = train_edge_probes(feats, spans, {"eval": spans},
                             EdgeProbeConfig(proj_dim=8, hidden=8, epochs=2, batch_size=2),
                             progress=False)
    assert len(edge.scores["eval"]) == fs.n_layers + 1  # every layer and the scalar mix
    trees = trees_from_ud([{"head": h, "upos": ["NOUN"] * len(h)} for h in HEADS], starts)
    structural = train_structural_probes(feats, trees, trees, "distance",
                                         StructuralConfig(rank=4, epochs=2, batch_size=2),
                                         progress=False)
    assert len(structural) == fs.n_layers
    other = extract_features(load_encoder(checkpoints["bert"]), load_tokenizer(
        checkpoints["bert"]), SENTENCES, cache_root=tmp_path, progress=False)
    score = cka(fs.layer(fs.n_layers - 1).astype(np.float32),
                other.layer(other.n_layers - 1).astype(np.float32))
    assert 0.0 <= float(score) <= 1.0 + 1e-5
    tuned = load_encoder(path)  # "fine-tuned": every weight but the embeddings moved
    emb = {id(p) for p in families.embeddings(tuned).parameters()}
    with torch.no_grad():
        for p in tuned.parameters():
            if id(p) not in emb:
                p.add_(0.1)
    original = {k: v.clone() for k, v in tuned.state_dict().items()}
    state = [{k: v.clone() for k, v in layer.state_dict().items()}
             for layer in encoder_layers(tuned)]
    extras = families.extras_state(tuned)
    n = len(state)
    batch = dict(tok(SENTENCES, is_split_into_words=True, padding=True, return_tensors="pt"))
    revert_layers(tuned, model, "bottom", n, state)  # every layer and what feeds them
    with torch.no_grad():
        torch.testing.assert_close(
            tuned(**families.encoder_inputs(tuned, batch)).last_hidden_state,
            model(**families.encoder_inputs(model, batch)).last_hidden_state)
    families.load_extras_state(tuned, extras)  # back to fine-tuned, as replacement_scores does
    revert_layers(tuned, model, "top", 0, state)
    for key, value in tuned.state_dict().items():
        assert torch.equal(value, original[key]), key


def test_a_recipe_longer_than_the_position_table_is_a_clear_error(checkpoints, tmp_path):
    from bertdrift.errors import ModelError

    P = get_profile(_profile(tmp_path), squad_max_length=384)  # the fixtures hold 128
    path = checkpoints["roberta"]
    with pytest.raises(ModelError, match="squad_max_length"):
        train_task("squad", P, tmp_path / "run", data=squad_data(n_train=4, n_eval=2),
                   encoder=load_encoder(path), tokenizer=load_tokenizer(path), progress=False)
