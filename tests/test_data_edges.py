"""Edge-probing task builders: schema, and the words under each span match the annotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertdrift.data import (
    EDGE_TASKS,
    build_edge_task,
    load_dpr,
    load_gum,
    load_semeval,
    load_spr2,
    load_srl,
    load_ud,
)
from bertdrift.data.edges import TASKS, _coref, edge_examples
from bertdrift.errors import DataError

N = 60  # source rows per quick check


def _eval_split(name: str) -> str:
    return TASKS[name].splits["eval"]


@pytest.mark.parametrize("name", EDGE_TASKS)
def test_schema(name: str, data_dir: Path) -> None:
    spec = TASKS[name]
    ds = edge_examples(name, _eval_split(name), data_dir=data_dir, limit_rows=N)
    assert ds.column_names == ["tokens", "targets"] and len(ds) > 0
    for row in ds:
        n = len(row["tokens"])
        assert row["targets"]
        for t in row["targets"]:
            assert 0 <= t["span1"][0] < t["span1"][1] <= n
            if spec.single_span:
                assert t["span2"] == [-1, -1]
            else:
                assert 0 <= t["span2"][0] < t["span2"][1] <= n
            assert spec.multilabel or len(t["label"]) == 1


def test_pos_and_deps_follow_ud(data_dir: Path) -> None:
    ud = load_ud("dev", data_dir=data_dir, limit=N)
    pos = edge_examples("pos", "dev", data_dir=data_dir, limit_rows=N)
    deps = edge_examples("deps", "dev", data_dir=data_dir, limit_rows=N)
    assert pos["tokens"] == ud["tokens"]
    for u, p in zip(ud, pos, strict=True):
        assert [t["label"][0] for t in p["targets"]] == u["upos"]
    with_arcs = [u for u in ud if any(h > 0 for h in u["head"])]  # one-word sentences have none
    for u, d in zip(with_arcs, deps, strict=True):
        arcs = [(i, h, r) for i, (h, r) in enumerate(zip(u["head"], u["deprel"], strict=True))
                if h > 0]
        assert len(d["targets"]) == len(arcs)
        for t, (i, h, rel) in zip(d["targets"], arcs, strict=True):
            assert d["tokens"][t["span1"][0]] == u["tokens"][i]
            assert d["tokens"][t["span2"][0]] == u["tokens"][h - 1]
            assert t["label"] == [rel.split(":")[0]] and ":" not in t["label"][0]


def test_entities_and_coref_follow_gum(data_dir: Path) -> None:
    gum = load_gum("dev", data_dir=data_dir, limit=N)
    ents = edge_examples("entities", "dev", data_dir=data_dir, limit_rows=N)
    with_ents = [r for r in gum if r["entities"]]
    assert len(ents) == len(with_ents)
    for g, e in zip(with_ents, ents, strict=True):
        assert [(t["span1"], t["label"][0]) for t in e["targets"]] == [
            ([m["start"], m["end"]], m["label"]) for m in g["entities"]]
    rows = gum.to_list()
    coref = _coref(rows)
    positives = 0
    for j, (row, ex) in enumerate(zip(rows, coref, strict=True)):
        prev = rows[j - 1] if j and rows[j - 1]["doc_id"] == row["doc_id"] else None
        assert ex["tokens"] == (prev["tokens"] if prev else []) + row["tokens"]
        off = len(prev["tokens"]) if prev else 0
        ids = {(m["start"] + off, m["end"] + off): m["entity_id"] for m in row["entities"]}
        if prev:
            ids.update({(m["start"], m["end"]): m["entity_id"] for m in prev["entities"]})
        for t in ex["targets"]:
            assert t["span1"][0] >= off  # span1 lies in the current sentence
            same = ids[tuple(t["span1"])] == ids[tuple(t["span2"])]
            assert t["label"] == ["1" if same else "0"]
            positives += same
    assert positives > 0


def test_consts_srl_spr2_rel_dpr_words(data_dir: Path) -> None:
    consts = edge_examples("consts", "dev", data_dir=data_dir, limit_rows=N)
    assert {"NP", "VP"} <= {t["label"][0] for r in consts for t in r["targets"]}
    srl_src = load_srl("dev", data_dir=data_dir, limit=N)
    srl = edge_examples("srl", "dev", data_dir=data_dir, limit_rows=N)
    for s, e in zip([r for r in srl_src if r["targets"]], srl, strict=True):
        assert e["tokens"] == s["text"].split(" ")
        assert [(t["span1"], t["span2"], t["label"][0]) for t in e["targets"]] == [
            (t["span1"], t["span2"], t["label"]) for t in s["targets"]]
    spr = edge_examples("spr2", "dev", data_dir=data_dir, limit_rows=N)
    assert spr["targets"] == load_spr2("dev", data_dir=data_dir, limit=N)["targets"]
    rel_src = load_semeval("test", data_dir=data_dir, limit=N)
    rel = edge_examples("rel", "test", data_dir=data_dir, limit_rows=N)
    for s, e in zip(rel_src, rel, strict=True):
        (t,) = e["targets"]
        assert "".join(e["tokens"][slice(*t["span1"])]) == s["e1_text"].replace(" ", "")
        assert "".join(e["tokens"][slice(*t["span2"])]) == s["e2_text"].replace(" ", "")
        assert t["label"] == [s["label"]]
    dpr_src = load_dpr("test", data_dir=data_dir, limit=N)
    dpr = edge_examples("dpr", "test", data_dir=data_dir, limit_rows=N)
    for s, e in zip(dpr_src, dpr, strict=True):
        for t, c in zip(e["targets"], s["candidates"], strict=True):
            assert " ".join(e["tokens"][slice(*t["span1"])]).lower() == s["pronoun_text"].lower()
            assert "".join(e["tokens"][slice(*t["span2"])]).lower() == c["text"].replace(
                " ", "").lower()
            assert t["label"] == ["entailed" if c["correct"] else "not_entailed"]


def test_build_edge_task(data_dir: Path) -> None:
    rel = build_edge_task("rel", "train", data_dir=data_dir)
    assert len(rel.data) == 8000 and len(rel.labels) == 19 and rel.metric == "accuracy"
    assert not rel.single_span and not rel.multilabel
    ev = build_edge_task("rel", "eval", data_dir=data_dir, limit=200, seed=1)
    assert ev.split == "eval" and len(ev.data) == 200 and ev.labels == rel.labels
    again = build_edge_task("rel", "eval", data_dir=data_dir, limit=200, seed=1)
    assert ev.data["tokens"] == again.data["tokens"]
    assert ev.data["tokens"] != build_edge_task("rel", "eval", data_dir=data_dir, limit=200,
                                                seed=2).data["tokens"]
    spr = build_edge_task("spr2", "dev", data_dir=data_dir)
    assert spr.multilabel and spr.metric == "micro_f1" and spr.n_targets == 630
    assert "volition" in spr.labels
    dpr = build_edge_task("dpr", "eval", data_dir=data_dir)
    assert dpr.metric == "f1" and dpr.labels == ["entailed", "not_entailed"]
    assert dpr.n_targets == 2 * len(dpr.data)


def test_build_edge_task_errors(data_dir: Path) -> None:
    with pytest.raises(DataError, match="unknown edge-probing task 'ner'.*pos"):
        build_edge_task("ner", "train", data_dir=data_dir)
    with pytest.raises(DataError, match="task 'rel' has no split 'dev'"):
        build_edge_task("rel", "dev", data_dir=data_dir)
