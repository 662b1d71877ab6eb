"""Task metrics and tree decoding against hand-worked cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bertdrift.errors import DataError
from bertdrift.finetune.metrics import (
    accuracy,
    adjacent_heads,
    attachment_scores,
    first_sentence,
    majority_label,
    normalize_answer,
    squad_f1,
    squad_scores,
)
from bertdrift.finetune.tasks.mst import chu_liu_edmonds, decode_tree, tree_score


def test_normalize_answer_official_rules():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    # articles only as whole words; punctuation removed before article removal, as officially
    assert normalize_answer("Theatre") == "theatre"
    assert normalize_answer("the-an") == "thean"
    assert normalize_answer("  A\tB  ") == "b"


def test_squad_em_f1_hand_worked():
    # pred "eiffel tower in paris" vs truth "eiffel tower": P = 2/4, R = 1 -> F1 = 2/3
    assert squad_f1("the Eiffel Tower in Paris", "Eiffel Tower") == pytest.approx(2 / 3)
    # pred "eiffel tower paris": P = 2/3, R = 1 -> F1 = 0.8
    assert squad_f1("Eiffel Tower, Paris.", "the Eiffel Tower") == pytest.approx(0.8)
    assert squad_f1("", "x") == 0.0
    scores = squad_scores(
        {"q1": "Denver Broncos", "q2": "1990s", "q3": "the cat"},
        {"q1": ["Denver Broncos", "Broncos"], "q2": ["the 1990s decade"], "q3": ["dog"],
         "q4": ["missing"]},
    )
    # EM: q1 only -> 25 %; F1: q1 1, q2 2*(1*0.5)/(1.5) = 2/3, q3 0, q4 0 -> (1 + 2/3) / 4
    assert scores["exact_match"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)


def test_attachment_scores_ignore_subtypes_and_count_punctuation():
    gold_h = [[2, 0, 2, 2]]
    gold_r = [["nmod:poss", "root", "obj", "punct"]]
    pred_h = [[2, 0, 2, 3]]  # punctuation head wrong: counts against UAS and LAS
    pred_r = [["nmod", "root", "obl", "punct"]]  # nmod == nmod:poss; obl != obj
    s = attachment_scores(gold_h, gold_r, pred_h, pred_r)
    assert s["uas"] == pytest.approx(75.0)
    assert s["las"] == pytest.approx(50.0)
    with pytest.raises(DataError):
        attachment_scores([[1]], [["root"]], [[1, 2]], [["root", "x"]])


def test_baselines_and_accuracy():
    assert adjacent_heads(3, "right") == [2, 3, 0]
    assert adjacent_heads(3, "left") == [0, 1, 2]
    assert majority_label([2, 1, 2, 0, 1]) == 1  # tie broken towards the smaller label
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(75.0)
    assert first_sentence("One. Two? Three.") == "One."


def _brute_force(scores: np.ndarray, single_root: bool) -> float:
    n = len(scores) - 1
    best = -np.inf
    for heads in itertools.product(range(n + 1), repeat=n):
        h = (-1, *heads)
        if any(h[d] == d for d in range(1, n + 1)):
            continue
        if single_root and sum(x == 0 for x in heads) != 1:
            continue
        ok = True
        for d in range(1, n + 1):  # every word must reach the root without a cycle
            seen, v = set(), d
            while v != 0 and v not in seen:
                seen.add(v)
                v = h[v]
            ok &= v == 0
        if ok:
            best = max(best, tree_score(scores, np.array(h)))
    return best


def test_mst_decodes_a_non_projective_tree():
    # words 1..4; best arcs 1<-3, 2<-4, 3<-0, 4<-3 cross (arc 3->1 spans 2, arc 4->2 spans 3)
    s = np.full((5, 5), -5.0)
    s[3, 0], s[1, 3], s[4, 3], s[2, 4] = 10, 10, 10, 10
    heads = decode_tree(s)
    assert heads.tolist() == [3, 4, 0, 3]


def test_mst_breaks_cycles_and_keeps_one_root():
    # greedy heads 1<->2 form a cycle; two words prefer the root
    s = np.full((4, 4), -10.0)
    s[1, 2], s[2, 1] = 5, 5
    s[1, 0], s[3, 0] = 4, 4.5
    s[3, 1] = 1
    heads = decode_tree(s)
    assert (heads == 0).sum() == 1
    assert tree_score(s, np.array([-1, *heads])) == pytest.approx(_brute_force(s, True))


@pytest.mark.parametrize("seed", range(30))
def test_mst_matches_brute_force_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    s = rng.normal(size=(n + 1, n + 1))
    free = chu_liu_edmonds(s)
    assert tree_score(s, free) == pytest.approx(_brute_force(s, False))
    heads = decode_tree(s)
    assert (heads == 0).sum() == 1
    assert tree_score(s, np.array([-1, *heads])) == pytest.approx(_brute_force(s, True))


def _best_single_root_by_trying_each(scores: np.ndarray) -> float:
    """Reference: Chu-Liu/Edmonds once per candidate root child, the best tree kept."""
    best = -np.inf
    for r in range(1, len(scores)):
        restricted = scores.copy()
        restricted[1:, 0] = -np.inf
        restricted[r, 0] = scores[r, 0]
        best = max(best, tree_score(scores, chu_liu_edmonds(restricted)))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_mst_root_penalty_matches_trying_every_root_on_long_sentences(seed):
    # an early-training parser attaches many words to the root: the case the penalty decides
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(8, 30))
    s = np.log(rng.dirichlet(np.ones(n + 1), size=n + 1))
    s[1:, 0] += rng.uniform(0, 3)  # favour the root
    heads = decode_tree(s)
    assert (heads == 0).sum() == 1
    assert tree_score(s, np.array([-1, *heads])) == pytest.approx(
        _best_single_root_by_trying_each(s))


def test_trivial_baselines_hand_worked():
    from datasets import Dataset

    from bertdrift.finetune.baselines import mnli_baselines, parsing_baselines, squad_baselines
    from bertdrift.finetune.tasks import TaskData

    train = Dataset.from_dict({"head": [[2, 0, 2]], "deprel": [["nsubj", "root", "nsubj"]]})
    dev = Dataset.from_dict({"head": [[2, 0, 2]], "deprel": [["nsubj:pass", "root", "obj"]]})
    out = parsing_baselines(TaskData(train, {"dev": dev}))
    right = out["head = right neighbour, label 'nsubj'"]  # heads [2, 3, 0]
    left = out["head = left neighbour, label 'nsubj'"]  # heads [0, 1, 2]
    assert right == pytest.approx({"dev_uas": 100 / 3, "dev_las": 100 / 3})
    assert left == pytest.approx({"dev_uas": 100 / 3, "dev_las": 0.0})

    nli = TaskData(Dataset.from_dict({"label": [2, 2, 0]}),
                   {"dev_matched": Dataset.from_dict({"label": [2, 1, 2, 0]})})
    assert mnli_baselines(nli) == {"majority class": {"dev_matched_accuracy": 50.0}}

    qa = Dataset.from_dict({"id": ["a"], "context": ["Paris is big. It is old."],
                            "answers": [{"text": ["Paris"], "answer_start": [0]}]})
    # "paris is big" vs "paris": P = 1/3, R = 1 -> F1 = 0.5
    assert squad_baselines(TaskData(qa, {"dev": qa}))["first sentence"] == pytest.approx(
        {"dev_exact_match": 0.0, "dev_f1": 50.0})
