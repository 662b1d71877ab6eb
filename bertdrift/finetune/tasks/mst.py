"""Maximum spanning arborescence decoding (Chu-Liu/Edmonds) with exactly one root child.

``scores[d, h]`` is the score of word ``d`` taking head ``h``; index 0 is the artificial root.
The tree maximises the sum of its arc scores; non-projective trees are allowed (as in UD).
"""

from __future__ import annotations

import numpy as np

from bertdrift.errors import DataError

NEG = -np.inf


def _find_cycle(heads: np.ndarray) -> list[int] | None:
    n = len(heads)
    state = np.zeros(n, dtype=np.int8)  # 0 unvisited, 1 on current path, 2 done
    state[0] = 2
    for start in range(1, n):
        path: list[int] = []
        v = start
        while state[v] == 0:
            state[v] = 1
            path.append(v)
            v = int(heads[v])
        if state[v] == 1:  # closed a cycle on the current path
            return path[path.index(v):]
        for u in path:
            state[u] = 2
    return None


def chu_liu_edmonds(scores: np.ndarray) -> np.ndarray:
    """Heads of the best arborescence rooted at 0 (``heads[0] = -1``); any number of root
    children."""
    s = np.array(scores, dtype=np.float64, copy=True)
    n = len(s)
    np.fill_diagonal(s, NEG)
    s[0, :] = NEG
    heads = s.argmax(axis=1)
    heads[0] = -1
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads
    cyc = np.array(cycle)
    in_cycle = np.zeros(n, dtype=bool)
    in_cycle[cyc] = True
    rest = np.flatnonzero(~in_cycle)  # contains 0
    m = len(rest) + 1
    c = m - 1
    cyc_score = s[cyc, heads[cyc]]
    ns = np.full((m, m), NEG)
    ns[: m - 1, : m - 1] = s[np.ix_(rest, rest)]
    out_scores = s[np.ix_(rest, cyc)]  # rest dependents x cycle heads
    best_out = out_scores.argmax(axis=1)
    ns[: m - 1, c] = out_scores.max(axis=1)
    in_scores = s[np.ix_(cyc, rest)] - cyc_score[:, None]  # cycle dependents x rest heads
    best_in = in_scores.argmax(axis=0)
    ns[c, : m - 1] = in_scores.max(axis=0)
    sub = chu_liu_edmonds(ns)
    out = np.full(n, -1)
    for i, v in enumerate(rest):
        if v == 0:
            continue
        h = sub[i]
        out[v] = cyc[best_out[i]] if h == c else rest[h]
    out[cyc] = heads[cyc]
    entry_head = int(sub[c])
    out[cyc[best_in[entry_head]]] = rest[entry_head]
    return out


def tree_score(scores: np.ndarray, heads: np.ndarray) -> float:
    return float(sum(scores[d, heads[d]] for d in range(1, len(heads))))


def decode_tree(scores: np.ndarray) -> np.ndarray:
    """Best well-formed dependency tree with exactly one word attached to the root.

    One Chu-Liu/Edmonds run on scores whose root arcs are lowered by a constant ``M`` larger
    than the spread of any two trees' scores: every arborescence has at least one root child
    and each further one costs another ``M``, so the best penalised tree has exactly one, and
    among single-rooted trees (all penalised by the same ``M``) it is the best (exact; Dozat,
    Qi and Manning 2017 decode the same way). Returns ``heads`` for words 1..n (0 = root),
    i.e. ``len(scores) - 1`` values.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] < 2:
        raise DataError(f"scores must be a square (n+1, n+1) matrix with n >= 1, got {s.shape}")
    if not np.isfinite(s).all():
        s = np.where(np.isfinite(s), s, -1e9)
    heads = chu_liu_edmonds(s)
    if int((heads[1:] == 0).sum()) == 1:
        return heads[1:]
    n = len(s) - 1
    penalty = 1.0 + 2.0 * n * float(s.max() - s.min())
    penalised = s.copy()
    penalised[1:, 0] -= penalty
    return chu_liu_edmonds(penalised)[1:]
