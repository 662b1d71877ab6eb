"""Task scores: accuracy, SQuAD v1.1 exact match / F1, and CoNLL 2018 UAS / LAS.

Every score is a percentage in [0, 100].

SQuAD v1.1 follows the official ``evaluate-v1.1.py``: answers are lower-cased, punctuation
(``string.punctuation``) and the articles *a*, *an*, *the* are removed and whitespace is
collapsed; EM and F1 take the maximum over the reference answers and average over questions.

UAS / LAS follow the CoNLL 2018 shared task (``conll18_ud_eval.py``): every syntactic word counts,
punctuation included; a word is correct for UAS if its head is right, and for LAS if its head and
its *universal* relation are right — the subtype after ``:`` is ignored (``nmod:poss`` ≡ ``nmod``).
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Iterable, Sequence

from bertdrift.errors import DataError

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    if len(predictions) != len(labels):
        raise DataError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise DataError("accuracy of an empty set is undefined; evaluate at least one example")
    return 100.0 * sum(int(p == g) for p, g in zip(predictions, labels, strict=False)) / len(labels)


# -- SQuAD v1.1 ------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """Official SQuAD v1.1 normalisation: lower, drop punctuation and articles, fix spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_f1(prediction: str, truth: str) -> float:
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """``exact_match`` and ``f1`` (percent) over the questions in ``references``.

    A question without a prediction scores 0 (as in the official script, which warns).
    """
    if not references:
        raise DataError("no SQuAD references to score; evaluate at least one question")
    em = f1 = 0.0
    for qid, truths in references.items():
        if not truths:
            raise DataError(f"question {qid!r} has no reference answer")
        pred = predictions.get(qid, "")
        em += max(squad_exact(pred, t) for t in truths)
        f1 += max(squad_f1(pred, t) for t in truths)
    n = len(references)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


# -- dependency parsing ----------------------------------------------------------------------
def universal_relation(deprel: str) -> str:
    """``nmod:poss`` -> ``nmod``: CoNLL 2018 LAS compares universal relations only."""
    return deprel.split(":", 1)[0]


def attachment_scores(
    gold_heads: Iterable[Sequence[int]],
    gold_rels: Iterable[Sequence[str]],
    pred_heads: Iterable[Sequence[int]],
    pred_rels: Iterable[Sequence[str]],
) -> dict[str, float]:
    """UAS and LAS (percent) over all words of all sentences, punctuation included."""
    words = uas = las = 0
    for s, (gh, gr, ph, pr) in enumerate(zip(gold_heads, gold_rels, pred_heads, pred_rels,
                                             strict=True)):
        if not len(gh) == len(gr) == len(ph) == len(pr):
            raise DataError(
                f"sentence {s}: {len(gh)} gold heads, {len(gr)} gold relations, {len(ph)} "
                f"predicted heads and {len(pr)} predicted relations must be equal in number"
            )
        for g_head, g_rel, p_head, p_rel in zip(gh, gr, ph, pr, strict=False):
            words += 1
            if int(g_head) == int(p_head):
                uas += 1
                las += universal_relation(g_rel) == universal_relation(p_rel)
    if words == 0:
        raise DataError("no words to score; evaluate at least one non-empty sentence")
    return {"uas": 100.0 * uas / words, "las": 100.0 * las / words}


# -- trivial baselines -----------------------------------------------------------------------
def majority_label(labels: Iterable[int]) -> int:
    counts = collections.Counter(labels)
    if not counts:
        raise DataError("no training labels to find a majority class in")
    return min(counts, key=lambda k: (-counts[k], k))


def adjacent_heads(n_words: int, direction: str = "right") -> list[int]:
    """Every word attached to a neighbour: ``right`` -> the next word (the last word is the
    root), ``left`` -> the previous word (the first word is the root)."""
    if direction == "right":
        return [i + 2 if i + 1 < n_words else 0 for i in range(n_words)]
    if direction == "left":
        return [i if i > 0 else 0 for i in range(n_words)]
    raise DataError(f"direction={direction!r}; use 'right' or 'left'")


def first_sentence(context: str) -> str:
    """The context's first sentence (up to the first '. ', '? ' or '! '), a SQuAD baseline."""
    match = re.search(r"[.!?](\s|$)", context)
    return context[: match.start() + 1] if match else context
