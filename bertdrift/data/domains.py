"""Word-tokenised sentences from each input domain (chapters 4, 6 and 7 compare models on them).

The three tasks' held-out data (``mnli``: MNLI dev-matched premises and hypotheses; ``squad``:
sentences of the evaluation articles' paragraphs and their questions; ``parsing``: UD EWT dev)
and text none of the tasks trained on (``wikitext``: WikiText-2 test; ``brown``: the Brown
corpus, all genres; ``gum``: GENTLE, GUM's out-of-domain test2 genres). Raw strings are split
into words by ``word_tokenize`` (words with inner hyphens/apostrophes, numbers, single
punctuation marks: contractions stay whole, unlike the Treebank tokenizer the SemEval and DPR
loaders use); paragraphs are split into sentences after ``.``, ``!``, ``?``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from bertdrift.config import DOMAINS
from bertdrift.errors import DataError

_WORD = re.compile(r"(?i)['’](?:s|re|ve|ll|d|m|t)\b|\w+(?:[-'’.]\w+)*|[^\w\s]")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])")


def word_tokenize(text: str) -> list[str]:
    """Split a string into words and punctuation marks (``"don't stop."`` -> 3 tokens)."""
    return _WORD.findall(text)


def split_sentences(text: str) -> list[str]:
    """Split a paragraph after ``.``/``!``/``?`` followed by space and a capital or digit."""
    return [s for s in (p.strip() for p in _SENT.split(text)) if s]


def _strings_to_sentences(texts: Sequence[str], split: bool) -> list[list[str]]:
    out: list[list[str]] = []
    for text in texts:
        for sent in split_sentences(text) if split else [text]:
            words = word_tokenize(sent)
            if len(words) >= 3:
                out.append(words)
    return out


def _wikitext(profile: Any) -> list[list[str]]:
    from bertdrift.data.text import load_wikitext

    return [list(t) for t in load_wikitext(data_dir=profile.data_path)["tokens"]]


def _gum(profile: Any) -> list[list[str]]:
    from bertdrift.data.gum import load_gum

    rows = load_gum("test2", data_dir=profile.data_path)["tokens"]
    return [list(t) for t in rows if not all(w == "_" for w in t)]


def all_domain_sentences(domain: str, profile: Any) -> list[list[str]]:
    """Every word-tokenised sentence of ``domain`` (held-out data for the three tasks)."""
    import bertdrift.data as data

    if domain == "mnli":
        ds = data.load_mnli("dev_matched", data_dir=profile.data_path)
        return _strings_to_sentences([*ds["premise"], *ds["hypothesis"]], split=False)
    if domain == "squad":
        ds = data.load_squad("dev", data_dir=profile.data_path)
        _, held_out = data.split_squad_by_article(ds, profile.squad_eval_articles)
        contexts = list(dict.fromkeys(held_out["context"]))
        return _strings_to_sentences(contexts, split=True) + _strings_to_sentences(
            held_out["question"], split=False)
    if domain == "parsing":
        return [list(t) for t in data.load_ud("dev", data_dir=profile.data_path)["tokens"]]
    if domain == "wikitext":
        return _wikitext(profile)
    if domain == "gum":
        return _gum(profile)
    if domain == "brown":
        return [list(t) for t in data.load_brown(data_dir=profile.data_path)["tokens"]]
    raise DataError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")


def domain_sentences(domain: str, profile: Any, *, n_sentences: int | None = None,
                     seed: int = 0, max_words: int = 60) -> list[list[str]]:
    """A seeded random sample of ``n_sentences`` sentences of ``domain`` (3..max_words words)."""
    pool = [s for s in all_domain_sentences(domain, profile) if 3 <= len(s) <= max_words]
    if not pool:
        raise DataError(f"domain {domain!r} yielded no sentences; check the data directory")
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    keep = sorted(order[: n_sentences or len(pool)])
    return [pool[i] for i in keep]


def sample_table(samples: dict[str, list[list[str]]], width: int = 110):
    """One row per domain: how many sentences and words were sampled, and the first sentence."""
    import pandas as pd

    return pd.DataFrame({
        "domain": list(samples),
        "sentences": [len(s) for s in samples.values()],
        "words": [sum(map(len, s)) for s in samples.values()],
        "example": [" ".join(s[0])[:width] if s else "" for s in samples.values()],
    })
