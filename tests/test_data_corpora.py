"""GUM, SRL, SPR2, SemEval, DPR, WikiText and Brown loaders on the real files + malformed ones."""

from __future__ import annotations

import csv
import html
import json
import re
from collections import defaultdict
from pathlib import Path

import conllu
import pytest

from bertdrift.data import (
    gum_split_docs,
    load_brown,
    load_dpr,
    load_gum,
    load_gum_constituents,
    load_semeval,
    load_spr2,
    load_srl,
    load_wikitext,
)
from bertdrift.data.gum import _read_ptb, parse_entities, tree_spans
from bertdrift.data.semeval import read_semeval
from bertdrift.data.text import wikitext_sentences
from bertdrift.errors import DataError


def test_gum_splits_and_genres(data_dir: Path) -> None:
    docs = {s: gum_split_docs(s, data_dir) for s in ("train", "dev", "test", "test2")}
    assert [len(docs[s]) for s in docs] == [177, 30, 30, 26]  # 191/32/32/26 minus 18 reddit
    assert not any(d.startswith("GUM_reddit_") for v in docs.values() for d in v)
    assert len({d for v in docs.values() for d in v}) == 263
    dev = load_gum("dev", data_dir=data_dir)
    assert set(dev["doc_id"]) == set(docs["dev"])
    assert all(g == d.split("_")[1] for g, d in zip(dev["genre"], dev["doc_id"], strict=True))
    assert "poetry" in set(load_gum("test2", data_dir=data_dir, limit=2000)["genre"])


def _coref_conll_mentions(path: Path) -> set[tuple[int, int, str, str]]:
    """(start, end, type, id) mentions of a GUM coref/*.conll file (document word indices)."""
    out, open_ = set(), defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) < 3 or line.startswith("#"):
            continue
        i = int(cols[0])
        for single, opener, closer in re.findall(r"\(([^()]+)\)|\(([^()]+)|([^()]+?)\)", cols[2]):
            name = single or opener or closer
            etype, eid = name.split("-")[:2]
            if single:
                out.add((i, i + 1, etype, eid))
            elif opener:
                open_[eid].append(i)
            else:
                out.add((open_[eid].pop(), i + 1, etype, eid))
    return out


def test_gum_entities_match_coref_conll(data_dir: Path) -> None:
    doc = "GUM_academic_exposure"
    ds = load_gum("dev", data_dir=data_dir).filter(lambda r: r["doc_id"] == doc)
    ours, offset = set(), 0
    for row in ds:
        for e in row["entities"]:
            assert 0 <= e["start"] < e["end"] <= len(row["tokens"])
            ours.add((e["start"] + offset, e["end"] + offset, e["label"], e["entity_id"]))
        offset += len(row["tokens"])
    assert len(ours) > 100
    assert ours == _coref_conll_mentions(data_dir / "gum" / "coref" / f"{doc}.conll")


def test_gum_entity_parse_errors() -> None:
    sent = {"line": 7, "misc": [{"Entity": "(1-person-new"}, {"Entity": "2)"}]}
    with pytest.raises(DataError, match=r"x\.conllu:7: .*closes 2"):
        parse_entities(Path("x.conllu"), sent)
    sent = {"line": 9, "misc": [{"Entity": "(1-person-new"}, None]}
    with pytest.raises(DataError, match=r"x\.conllu:9: .*not closed"):
        parse_entities(Path("x.conllu"), sent)


def test_gum_constituents(data_dir: Path) -> None:
    const = load_gum_constituents("dev", data_dir=data_dir)
    dep = load_gum("dev", data_dir=data_dir)
    assert const["sent_id"] == dep["sent_id"] and const["tokens"] == dep["tokens"]
    labels = {c["label"] for cs in const["constituents"] for c in cs}
    assert {"NP", "VP", "PP", "S"} <= labels and not any("-SBJ" in x for x in labels)
    for row in const.select(range(100)):
        assert all(0 <= c["start"] < c["end"] <= len(row["tokens"]) for c in row["constituents"])


def test_tree_spans_and_bad_tree(tmp_path: Path) -> None:
    import nltk

    tree = nltk.Tree.fromstring("(ROOT (S (NP-SBJ (DT The) (NN dog)) (VP (VBZ barks) "
                                "(-LRB- -LRB-) (NN a-LRB-b-RRB-))))")
    leaves, spans = tree_spans(tree)
    assert leaves == ["The", "dog", "barks", "(", "a(b)"]
    assert [(s["start"], s["end"], s["label"]) for s in spans] == [
        (0, 5, "S"), (0, 2, "NP"), (2, 5, "VP")]
    p = tmp_path / "bad.ptb"
    p.write_text("(ROOT (NP (NN a)))\n\n(ROOT (NP (NN b))\n  (X\n")
    with pytest.raises(DataError, match=r"bad\.ptb:3: cannot parse"):
        _read_ptb(p)


def test_srl_dev(data_dir: Path) -> None:
    ds = load_srl("dev", data_dir=data_dir)
    assert len(ds) == 2001 - 28
    assert sum(len(t) for t in ds["targets"]) == 9598
    # the predicate word (span1) has the lemma PropBank names, per the UD lemmas (nominal and
    # adjectival predicates have a derivational PropBank lemma: service -> serve, so compare the
    # first three letters)
    lemmas = {}
    with open(data_dir / "ud-ewt" / "en_ewt-ud-dev.conllu", encoding="utf-8") as f:
        for sent in conllu.parse_incr(f):
            lemmas[sent.metadata["sent_id"]] = [t["lemma"] for t in sent if isinstance(t["id"], int)]
    raw = {}
    with open(data_dir / "ewt-srl" / "ewt_propbank_srl.dev.jsonl", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            raw[obj["sent_id"]] = {tuple(p["span1"]): p["pred_lemma"] for p in obj["predicates"]}
    same = total = 0
    for row in ds:
        for t in row["targets"]:
            s, e = t["span1"]
            assert e - s == 1 and 0 <= t["span2"][0] < t["span2"][1] <= len(row["tokens"])
            total += 1
            same += lemmas[row["sent_id"]][s].lower()[:3] == raw[row["sent_id"]][(s, e)][:3]
    assert same / total > 0.98


def test_spr2_dev(data_dir: Path) -> None:
    ds = load_spr2("dev", data_dir=data_dir)
    assert len(ds) == 291 and sum(len(t) for t in ds["targets"]) == 630
    phrases = {}
    with open(data_dir / "spr2" / "protoroles_eng_ud1.2_11082016.tsv", encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            key = (r["Sentence.ID"], int(r["Arg.Tokens.Begin"]), int(r["Arg.Tokens.End"]) + 1)
            phrases[key] = html.unescape(r["Arg.Phrase"]).lower()
    match = total = 0
    for row in ds:
        for t in row["targets"]:
            words = " ".join(row["tokens"][t["span2"][0]:t["span2"][1]]).lower()
            total += 1
            match += words == phrases[(row["sentence_id"], *t["span2"])]
            assert set(t["label"]) <= {"awareness", "volition", "sentient", "instigation",
                                       "existed_before", "existed_during", "existed_after",
                                       "change_of_location", "change_of_state",
                                       "change_of_possession", "change_of_state_continuous",
                                       "was_used", "was_for_benefit", "partitive",
                                       "changes_possession", "location_of_event",
                                       "makes_physical_contact", "stationary",
                                       "exists_as_physical", "predicate_changed_argument"}
    assert match / total > 0.97


def test_semeval(data_dir: Path) -> None:
    train = load_semeval("train", data_dir=data_dir)
    test = load_semeval("test", data_dir=data_dir)
    assert (len(train), len(test)) == (8000, 2717)
    assert len(set(train["label"])) == 19 and "Other" in set(test["label"])
    for r in train:
        for e in ("e1", "e2"):
            s, t = r[e]
            assert "".join(r["tokens"][s:t]) == r[f"{e}_text"].replace(" ", "")
        assert "<e1>" not in r["text"]
    dev, rest = load_semeval("dev", data_dir=data_dir), load_semeval("train_rest", data_dir=data_dir)
    assert (len(dev), len(rest)) == (800, 7200) and not set(dev["id"]) & set(rest["id"])


def test_semeval_malformed(tmp_path: Path) -> None:
    p = tmp_path / "T.TXT"
    good = '1\t"A <e1>cat</e1> in a <e2>box</e2>."\r\nContent-Container(e1,e2)\r\nComment:\r\n\r\n'
    p.write_text(good + '2\t"A <e1>dog</e1> <e2>bone</e2>."\nLikes(e1,e2)\nComment:\n\n')
    with pytest.raises(DataError, match=r"T\.TXT:6: expected a relation label"):
        read_semeval(p)
    p.write_text(good + '3\t"no markers here"\nOther\n\n')
    with pytest.raises(DataError, match=r"T\.TXT:5: need one"):
        read_semeval(p)
    p.write_text(good + "4 missing tab and quotes\nOther\n\n")
    with pytest.raises(DataError, match=r"T\.TXT:5: expected id"):
        read_semeval(p)


def test_dpr(data_dir: Path) -> None:
    train, test = load_dpr("train", data_dir=data_dir), load_dpr("test", data_dir=data_dir)
    assert len(train) >= 1300 and len(test) >= 550  # 1,322 / 564 blocks, a few unlocatable
    for r in test:
        s, e = r["pronoun"]
        assert " ".join(r["tokens"][s:e]).lower() == r["pronoun_text"].lower()
        assert sum(c["correct"] for c in r["candidates"]) == 1
        for c in r["candidates"]:
            words = "".join(r["tokens"][c["span"][0]:c["span"][1]]).lower()
            assert words == c["text"].replace(" ", "").lower()


def test_dpr_malformed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dpr").mkdir()
    (tmp_path / "dpr" / "train.c.txt").write_text("He ran.\nhe\nA,B\nA\n\nOnly two\nlines\n")
    with pytest.raises(DataError, match=r"train\.c\.txt:6: a DPR block needs 4 lines"):
        load_dpr("train", data_dir=tmp_path)


def test_wikitext_and_brown(data_dir: Path) -> None:
    wiki = load_wikitext(data_dir=data_dir)
    assert len(wiki) > 5000 and not any(t.startswith("=") for t in wiki["text"][:500])
    assert not any("@-@" in t for t in wiki["text"])
    sub = load_wikitext(data_dir=data_dir, limit=20, seed=3)
    assert sub["text"] == load_wikitext(data_dir=data_dir, limit=20, seed=3)["text"]
    brown = load_brown(data_dir=data_dir)
    assert len(brown) == 57340 and len(set(brown["genre"])) == 15
    news = load_brown(genres=["news", "fiction"], data_dir=data_dir, limit=50)
    assert len(news) == 50 and set(news["genre"]) <= {"news", "fiction"}
    with pytest.raises(DataError, match="unknown Brown genre"):
        load_brown(genres=["tweets"], data_dir=data_dir)


def test_wikitext_sentence_split() -> None:
    lines = [" = Title = ", " A @-@ b is c . It is 3 @.@ 5 ! ", "", " = = Sub = = ", " No end"]
    assert wikitext_sentences(lines) == [["A", "-", "b", "is", "c", "."],
                                         ["It", "is", "3", ".", "5", "!"], ["No", "end"]]


def test_spr2_wrong_column_count(tmp_path: Path) -> None:
    (tmp_path / "spr2").mkdir()
    (tmp_path / "spr2" / "spr2_ud1.2_sentences.jsonl").write_text(
        '{"sentence_id": "s 1", "tokens": ["Dogs", "bark"], "status": "verified"}\n')
    header = ("Split\tSentence.ID\tPred.Token\tArg.Tokens.Begin\tArg.Tokens.End\tProperty\t"
              "Response\tApplicable")
    good = "dev\ts 1\t1\t0\t0\tvolition\t5\tyes"
    (tmp_path / "spr2" / "protoroles_eng_ud1.2_11082016.tsv").write_text(
        f"{header}\n{good}\n{good}\tEXTRA\n")
    with pytest.raises(DataError, match=r"protoroles_eng_ud1\.2_11082016\.tsv:3: 9 columns"):
        load_spr2("dev", data_dir=tmp_path)
    (tmp_path / "spr2" / "protoroles_eng_ud1.2_11082016.tsv").write_text(f"{header}\n{good}\n")
    ds = load_spr2("dev", data_dir=tmp_path)
    assert ds["targets"] == [[{"span1": [1, 2], "span2": [0, 1], "label": ["volition"]}]]


def test_corpus_sizes(data_dir: Path) -> None:
    from bertdrift.data import corpus_sizes

    table = corpus_sizes(data_dir)
    assert list(table.columns) == ["corpus", "split", "unit", "examples", "tokens"]
    ud_dev = table[(table.corpus == "UD EWT v2.16") & (table.split == "dev")].iloc[0]
    assert (ud_dev.examples, ud_dev.tokens) == (2001, 25147)
    squad = table[table.corpus == "SQuAD v1.1"].iloc[0]
    assert squad.examples == 10570
    assert len(table) == 23 and (table.examples > 0).all()
