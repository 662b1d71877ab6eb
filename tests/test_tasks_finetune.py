"""Task heads, features and losses on a tiny random BERT."""

from __future__ import annotations

import torch
from _finetune_fixtures import mnli_data, squad_data, tiny_encoder, tiny_tokenizer, ud_data

from bertdrift.config import TaskRecipe
from bertdrift.finetune import build_task_model
from bertdrift.finetune.tasks import get_task

RECIPE = TaskRecipe(lr=1e-3, epochs=1, batch_size=4, max_length=32, train_size=None,
                    eval_size=None, stride=8)


def _run(task_name, data, tmp_path, train=True):
    task = get_task(task_name)
    tok = tiny_tokenizer(tmp_path)
    meta = data.meta or task.meta_from(data.train)
    model = build_task_model(task, tiny_encoder(), meta)
    examples = data.train if train else next(iter(data.evals.values()))
    feats = task.build_features(examples, tok, RECIPE, meta, train=train)
    batch = task.collate(feats[:4], tok.pad_token_id)
    return task, model, feats, batch, meta, examples


def _check_loss(task, model, batch):
    model.train()
    loss = task.loss(model(batch), batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    enc_grad = model.encoder.embeddings.word_embeddings.weight.grad
    assert enc_grad is not None and enc_grad.abs().sum() > 0
    return float(loss.detach())


def test_nli_head_shapes_and_loss(tmp_path):
    task, model, feats, batch, meta, _ = _run("mnli", mnli_data(), tmp_path)
    out = model(batch)
    assert out["logits"].shape == (4, 3)
    assert batch["input_ids"].shape[1] == max(len(f["input_ids"]) for f in feats[:4])
    loss = _check_loss(task, model, batch)
    # a random 3-way classifier starts near log(3)
    assert abs(loss - torch.log(torch.tensor(3.0)).item()) < 0.5
    preds = task.predict(model.eval()(batch), batch)
    assert len(preds) == 4 and all(p in (0, 1, 2) for p in preds)


def test_qa_features_locate_answers_and_use_a_stride(tmp_path):
    data = squad_data(n_train=12)
    task, model, feats, batch, meta, examples = _run("squad", data, tmp_path)
    assert len(feats) > len(examples)  # contexts longer than 32 tokens overflow into strides
    found = 0
    tok = tiny_tokenizer(tmp_path)
    enc = tok(list(examples["question"]), list(examples["context"]), truncation="only_second",
              max_length=32, stride=8, return_overflowing_tokens=True,
              return_offsets_mapping=True)
    for i, f in enumerate(feats):
        if f["start_position"] == 0:
            continue
        offsets = enc["offset_mapping"][i]
        ex = examples[f["example_index"]]
        span = ex["context"][offsets[f["start_position"]][0] : offsets[f["end_position"]][1]]
        assert span == ex["answers"]["text"][0]
        found += 1
    assert found >= len(examples)  # every answer lies inside at least one window
    out = model(batch)
    assert out["start_logits"].shape == batch["input_ids"].shape
    _check_loss(task, model, batch)


def test_qa_postprocessing_respects_context_and_length(tmp_path):
    data = squad_data(n_eval=4)
    task, model, feats, batch, meta, examples = _run("squad", data, tmp_path, train=False)
    from bertdrift.finetune.tasks.qa import postprocess

    preds = []
    for f in feats:
        n = len(f["input_ids"])
        start, end = torch.zeros(n).numpy(), torch.zeros(n).numpy()
        ctx = [k for k, o in enumerate(f["offset_mapping"]) if o is not None]
        start[0] = end[0] = 100.0  # [CLS] is not in the context: never chosen
        start[ctx[1]], end[ctx[2]] = 5.0, 5.0
        end[ctx[0]] = 9.0  # ends before the start: never chosen
        preds.append((start, end))
    answers = postprocess(examples, feats, preds)
    assert set(answers) == set(examples["id"])
    for f, (_s, _e) in zip(feats, preds, strict=True):
        ctx = [k for k, o in enumerate(f["offset_mapping"]) if o is not None]
        ex = examples[f["example_index"]]
        text = ex["context"][f["offset_mapping"][ctx[1]][0] : f["offset_mapping"][ctx[2]][1]]
        if f is next(g for g in feats if g["example_index"] == f["example_index"]):
            assert answers[ex["id"]] == text
    scores = task.evaluate(examples, feats, preds, meta, RECIPE)
    assert set(scores) == {"exact_match", "f1"}


def test_parser_head_shapes_loss_and_trees(tmp_path):
    data = ud_data()
    task, model, feats, batch, meta, examples = _run("parsing", data, tmp_path)
    assert "nmod:poss" in meta["relations"]
    for f, tokens in zip(feats, examples["tokens"], strict=True):
        assert len(f["word_starts"]) == len(tokens)
    out = model(batch)
    w = batch["word_starts"].shape[1]
    assert out["arc"].shape == (4, w + 1, w + 1)
    rel = model.head.all_rel_scores(out["rel_dep"], out["rel_head"])
    assert rel.shape == (4, w + 1, w + 1, len(meta["relations"]))
    # the pairwise label scores agree with the per-head ones
    gold = torch.cat([torch.zeros_like(batch["heads"][:, :1]), batch["heads"].clamp(min=0)], 1)
    per_head = model.head.rel_scores(out["rel_dep"], out["rel_head"], gold)
    picked = rel.gather(2, gold[:, :, None, None].expand(-1, -1, 1, rel.shape[-1])).squeeze(2)
    assert torch.allclose(per_head, picked, atol=1e-5)
    _check_loss(task, model, batch)
    model.eval()
    preds = task.predict(model(batch), batch)
    for (heads, _rels), n in zip(preds, batch["word_mask"].sum(-1).tolist(), strict=True):
        assert len(heads) == n and sum(h == 0 for h in heads) == 1
    scores = task.evaluate(examples.select(range(4)), feats[:4], preds, meta, RECIPE)
    assert 0 <= scores["las"] <= scores["uas"] <= 100


def test_real_squad_and_ud_features_with_the_packaged_tokenizer(data_dir):
    """On real data: answer spans survive tokenisation, every UD word gets a first subword."""
    from bertdrift import get_profile
    from bertdrift.models import load_tokenizer

    P = get_profile("tiny", data_dir=str(data_dir), squad_train_size=200, parsing_train_size=200,
                    squad_max_length=160, squad_stride=48)
    tok = load_tokenizer()
    squad = get_task("squad")
    data = squad.load(P)
    assert not set(data.train["title"]) & set(data.evals["dev"]["title"])  # split by article
    feats = squad.build_features(data.train, tok, P.squad, {}, train=True)
    enc = tok([q.lstrip() for q in data.train["question"]], list(data.train["context"]),
              truncation="only_second", max_length=160, stride=48,
              return_overflowing_tokens=True, return_offsets_mapping=True)
    exact = inside = 0
    for i, f in enumerate(feats):
        if f["start_position"] == 0:
            continue
        inside += 1
        ex = data.train[f["example_index"]]
        offsets = enc["offset_mapping"][i]
        span = ex["context"][offsets[f["start_position"]][0]: offsets[f["end_position"]][1]]
        exact += span.strip().lower() == ex["answers"]["text"][0].strip().lower()
    assert inside >= len(data.train) and exact / inside > 0.97
    parsing = get_task("parsing")
    ud = parsing.load(P)
    pfeats = parsing.build_features(ud.train, tok, P.parsing, ud.meta, train=True)
    assert all(len(f["word_starts"]) == f["n_words"] for f in pfeats)
    assert any(":" in r for r in ud.meta["relations"])  # subtypes are kept for training
