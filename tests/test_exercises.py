"""The solutions of the book's exercises, run as tests.

Each test holds the solution code as printed in a folded solution (chapter 1:
``notebooks/01_setup.ipynb`` and the other chapters' exercise cells), then asserts what the
solution's text says the reader will see. Keep the two copies in step: when a solution changes,
change its test. Everything here uses small synthetic inputs and runs in seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


# -- chapter 1 ----------------------------------------------------------------------------------
def test_01_anisotropy_and_cosine_rsa():
    from bertdrift.similarity import geometry, measures

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 64))
    u = rng.normal(size=64)
    u /= np.linalg.norm(u)
    rows = []
    for t in [0, 2, 8, 32]:
        shifted = x + t * u
        aniso = geometry.layer_geometry(shifted[:, None, :], sample=300)["anisotropy"].iloc[0]
        rows.append((t, aniso, float(measures.rsa(x, shifted)), float(measures.cka(x, shifted))))

    aniso = [r[1] for r in rows]
    rsa = [r[2] for r in rows]
    cka = [r[3] for r in rows]
    assert abs(aniso[0]) < 0.05 and aniso[-1] > 0.9  # the offset pulls every vector one way
    assert all(a < b for a, b in zip(aniso, aniso[1:], strict=False))
    assert rsa[0] == pytest.approx(1.0) and rsa[-1] < 0.9  # cosine RSA sees a "change"
    assert cka == pytest.approx([1.0] * 4)  # centring removes the translation


# -- chapter 2 ----------------------------------------------------------------------------------
def test_02_freezing_trainable_share():
    from bertdrift import models

    def trainable(model):
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    full = trainable(models.tiny_bert(num_layers=4))
    shares = []
    for k in range(5):
        m = models.freeze_bottom(models.tiny_bert(num_layers=4), k)
        shares.append(trainable(m) / full)
        print(k, round(shares[-1], 3))

    assert shares[0] == 1.0
    assert all(a > b for a, b in zip(shares, shares[1:], strict=False))
    assert shares[1] < 1.0 - 0.2  # k = 1 already freezes the embeddings too
    steps = [a - b for a, b in zip(shares, shares[1:], strict=False)]
    assert steps[0] == max(steps)  # the first step is the largest, as the solution says
    assert shares[4] > 0  # the pooler (and, in a task model, the head) still trains


def test_02_warmup_schedule():
    import torch
    from transformers import get_linear_schedule_with_warmup

    lr, total, warmup_ratio = 5e-5, 100, 0.1
    warmup = int(warmup_ratio * total)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    seen = []
    for _ in range(total):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()

    def formula(t):
        return lr * t / warmup if t < warmup else lr * (total - t) / (total - warmup)

    assert np.allclose(seen, [formula(t) for t in range(total)])


# -- chapter 3 ----------------------------------------------------------------------------------
def test_03_linear_chain_baseline_uuas():
    from bertdrift.probing import structural

    # "The old dog sleeps in the sun ." with UD heads (1-based, 0 = root)
    heads = [3, 3, 4, 0, 7, 7, 4, 4]
    upos = ["DET", "ADJ", "NOUN", "VERB", "ADP", "DET", "NOUN", "PUNCT"]
    gold = structural.tree_distances(structural.parents_from_heads(heads))
    n = len(heads)
    chain = np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(float)
    punct = np.array([u == "PUNCT" for u in upos])
    perfect = structural.uuas([gold], [gold], [punct])
    baseline = structural.uuas([chain], [gold], [punct])
    print(perfect, baseline)

    assert perfect == 1.0
    assert 0.3 < baseline < 1.0  # adjacent words are often linked: a chain scores well


def test_03_control_labels_depend_on_word_type_only():
    from bertdrift.probing import control

    rows = [
        {"tokens": ["The", "dog", "barks"], "targets": [
            {"span1": [0, 1], "span2": [-1, -1], "label": ["DET"]},
            {"span1": [1, 2], "span2": [-1, -1], "label": ["NOUN"]},
            {"span1": [2, 3], "span2": [-1, -1], "label": ["VERB"]}]},
        {"tokens": ["the", "barks", "of", "the", "dog"], "targets": [
            {"span1": [0, 1], "span2": [-1, -1], "label": ["DET"]},
            {"span1": [1, 2], "span2": [-1, -1], "label": ["NOUN"]},
            {"span1": [2, 3], "span2": [-1, -1], "label": ["ADP"]},
            {"span1": [3, 4], "span2": [-1, -1], "label": ["DET"]},
            {"span1": [4, 5], "span2": [-1, -1], "label": ["NOUN"]}]},
    ]
    dist = control.label_distribution(rows)
    ctrl = control.control_rows(rows, dist, seed=0)
    by_type: dict[str, set[str]] = {}
    for row in ctrl:
        for t in row["targets"]:
            word = row["tokens"][t["span1"][0]].lower()
            by_type.setdefault(word, set()).update(t["label"])
    print(by_type)

    assert all(len(labels) == 1 for labels in by_type.values())  # one label per word type
    # "barks" is a VERB once and a NOUN once: no word-type lookup can get both right on the
    # real task, but it gets the control task right every time
    real = {(r["tokens"][t["span1"][0]].lower(), t["label"][0]) for r in rows for t in r["targets"]}
    assert ("barks", "VERB") in real and ("barks", "NOUN") in real
    assert set().union(*by_type.values()) <= set(dist)


# -- chapter 4 ----------------------------------------------------------------------------------
def test_04_invariances():
    from bertdrift.similarity import measures

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 32))
    q, _ = np.linalg.qr(rng.normal(size=(32, 32)))  # a random rotation
    a = rng.normal(size=(32, 32))  # an invertible, non-orthogonal map
    out = {}
    for name, y in [("rotation", x @ q), ("scale x3", 3 * x), ("linear map", x @ a)]:
        out[name] = [round(float(f(x, y)), 3)
                     for f in (measures.rsa, measures.cka, measures.procrustes)]
        print(name, out[name])

    assert out["rotation"] == pytest.approx([1.0, 1.0, 1.0])
    assert out["scale x3"] == pytest.approx([1.0, 1.0, 1.0])
    assert all(v < 0.95 for v in out["linear map"])  # none is invariant to any linear map


def test_04_noise_ceiling():
    from bertdrift import drift_evidence
    from bertdrift.similarity import measures

    rng = np.random.default_rng(0)
    pre = rng.normal(size=(400, 32))
    change = rng.normal(size=(400, 32))  # what fine-tuning on the task does, in every seed
    seed_a = pre + 0.5 * change + 0.5 * rng.normal(size=(400, 32))  # plus seed-specific noise
    seed_b = pre + 0.5 * change + 0.5 * rng.normal(size=(400, 32))
    no_change_a = pre + 0.5 * rng.normal(size=(400, 32))  # a "fine-tuning" that only adds noise
    no_change_b = pre + 0.5 * rng.normal(size=(400, 32))
    truth = 1 - float(measures.rsa(pre, pre + 0.5 * change))
    out = {}
    for name, a, b in [("shared change", seed_a, seed_b),
                       ("noise only", no_change_a, no_change_b)]:
        r_a, r_b, q = (float(measures.rsa(u, v)) for u, v in ((pre, a), (pre, b), (a, b)))
        out[name] = {"raw": 1 - r_a, "seeds": 1 - q,
                     "corrected": float(drift_evidence.pair_change(r_a, r_b, q)),
                     "old": q - (r_a + r_b) / 2}
    print(truth, out)

    noise = out["noise only"]
    assert noise["raw"] > 0.1 and noise["seeds"] > 1.5 * noise["raw"]  # about twice as much
    assert abs(noise["corrected"]) < 0.02 and noise["old"] < -0.1  # old: clearly negative
    shared = out["shared change"]
    assert shared["corrected"] == pytest.approx(truth, abs=0.02)
    assert shared["old"] < truth / 2  # the old reading shrinks the change towards 0


# -- chapter 5 ----------------------------------------------------------------------------------
def test_05_revertible():
    from bertdrift import ablations

    loss = {"top": [0, 0.2, 0.5, 3.0, 8, 20, 30], "bottom": [0, 4, 10, 20, 25, 28, 30]}
    frame = pd.DataFrame([{"task": "mnli", "seed": 0, "side": s, "j": j, "loss": v}
                          for s, values in loss.items() for j, v in enumerate(values)])
    table = ablations.revertible(frame, tolerance=1.0)
    print(table)

    by_side = table.set_index("side")
    assert by_side.loc["top", "max_reverted"] == 2
    assert by_side.loc["top", "layers"] == "4,5"
    assert by_side.loc["bottom", "max_reverted"] == 0


def test_05_drop_near_the_baseline():
    from bertdrift import ablations

    # scores (%) with k layers frozen, two seeds; the trivial baseline is 35.4 (majority class)
    scores = {0: [36.0, 36.4], 2: [35.9, 35.5], 4: [35.4, 35.6]}
    sweep = pd.DataFrame([{"task": "mnli", "seed": s, "k": k, "score": v}
                          for k, vs in scores.items() for s, v in enumerate(vs)])
    drop = ablations.freezing_drop(sweep, k=4)
    margin = sweep[sweep["k"] == 0]["score"].mean() - 35.4
    print(drop, margin)

    assert drop["mnli"] == pytest.approx(0.7)  # "barely drops"...
    assert margin == pytest.approx(0.8)  # ...but k = 0 itself is at the floor: nothing to lose


# -- chapter 6 ----------------------------------------------------------------------------------
def test_06_ratio_is_unstable_when_the_own_change_is_tiny():
    from bertdrift import drift

    def frame(own_rsa: float, other_rsa: float) -> pd.DataFrame:
        rows = []
        for domain, rsa in (("mnli", own_rsa), ("wikitext", other_rsa), ("gum", other_rsa)):
            for layer in (0, 6):
                r = rsa if layer == 6 else 1.0
                rows.append({"task": "mnli", "domain": domain, "layers": layer, "rsa": r,
                             "rsa_low": r - 0.001, "rsa_high": r + 0.001})
        return pd.DataFrame(rows)

    big = drift.domain_gaps(frame(0.80, 0.90), ["mnli"], ["mnli", "wikitext", "gum"])
    tiny = drift.domain_gaps(frame(0.9990, 0.9995), ["mnli"], ["mnli", "wikitext", "gum"])
    print(big[["gap", "ratio"]], tiny[["gap", "ratio"]])

    assert big.loc["mnli", "gap"] == pytest.approx(0.10)
    assert big.loc["mnli", "ratio"] == pytest.approx(0.5)
    assert tiny.loc["mnli", "ratio"] == pytest.approx(0.5)  # same ratio...
    assert tiny.loc["mnli", "gap"] == pytest.approx(0.0005)  # ...from a gap 200 times smaller


# -- chapter 7 ----------------------------------------------------------------------------------
def test_07_depth_profile_and_half_change_step():
    from bertdrift.finetune.loop import snapshot_steps

    steps = snapshot_steps([0, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1], total=320)
    # change (1 - RSA) at layers 1..6, per snapshot: fast at first, then slow
    final = np.array([0.01, 0.01, 0.02, 0.04, 0.08, 0.14])
    fraction_done = np.array([0.0, 0.3, 0.5, 0.7, 0.85, 0.95, 1.0])
    change = fraction_done[:, None] * final[None, :]

    def top_third_share(c):
        third = max(1, len(c) // 3)
        return c[-third:].sum() / c.sum()

    total_change = change.sum(1)
    half_step = steps[int(np.argmax(total_change >= total_change[-1] / 2))]
    print(steps, top_third_share(change[-1]), half_step)

    assert steps == [0, 10, 20, 40, 80, 160, 320]
    assert top_third_share(change[-1]) == pytest.approx(0.22 / 0.30)
    assert half_step == 20  # half of the change happens in the first 1/16 of training


# -- chapter 8 ----------------------------------------------------------------------------------
def test_08_many_parts_under_the_null():
    from bertdrift.inference import Part, judge_part, judge_parts

    rng = np.random.default_rng(0)
    k, sims = 27, 400
    plain = holm = 0
    for _ in range(sims):
        parts = {f"p{i}": Part(list(rng.normal(0.0, 1.0, 3)), null=0.0) for i in range(k)}
        plain += any(judge_part(p).verdict == "disagree" for p in parts.values())
        holm += any(r.verdict == "disagree" for r in judge_parts(parts).values())
    print(plain / sims, holm / sims)

    assert 0.40 < plain / sims < 0.60  # about 1 - 0.975**27 = 0.50
    assert holm / sims < 0.06  # Holm keeps it near 0.025


def test_08_agreeing_with_a_negligible_effect():
    from bertdrift.inference import Part, judge_part

    r = judge_part(Part([0.0040, 0.0041, 0.0039, 0.0040], null=0.0, margin=0.02))
    print(r.low, r.high, r.verdict)

    assert r.low > 0 and r.verdict == "equivalent"  # excludes 0, yet no effect worth the name


# -- the teaching cells in the chapters ---------------------------------------------------------
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["01_setup", "02_finetuning", "03_probing", "04_rsa",
                                  "05_ablations", "06_out_of_domain", "07_dynamics", "08_claims"])
def test_every_chapter_has_objectives_takeaways_and_exercises_with_solutions(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Learning objectives" in text, f"{name}: no learning objectives"
    assert "## Key takeaways" in text, f"{name}: no key takeaways"
    assert "## Exercises" in text, f"{name}: no exercises"
    assert len(re.findall(r"[Ss]olution", text)) >= 2, f"{name}: fewer than two solutions"
