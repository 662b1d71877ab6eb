"""Word tokenisation for raw-text corpora (SemEval, DPR): NLTK's Treebank tokenizer.

It needs no downloaded model. Treebank quote tokens (````` and ``''``) are mapped back to ``"``
so the words stay close to the source text.
"""

from __future__ import annotations

from functools import lru_cache

_QUOTES = {"``": '"', "''": '"'}


@lru_cache(maxsize=1)
def _tokenizer():
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """Split ``text`` into Penn-Treebank-style words (``can't`` → ``ca``, ``n't``)."""
    return [_QUOTES.get(w, w) for w in _tokenizer().tokenize(text)]


def find_sequence(tokens: list[str], needle: list[str], start: int = 0) -> list[int]:
    """Start indices of every case-insensitive occurrence of ``needle`` in ``tokens``."""
    low = [t.lower() for t in tokens]
    nl = [t.lower() for t in needle]
    n = len(nl)
    return [i for i in range(start, len(low) - n + 1) if n and low[i:i + n] == nl]
