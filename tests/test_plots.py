"""Every figure function draws from small synthetic frames in the book's palette, fits the
book's column (≤ MAX_WIDTH inches at DPI) and keeps its legend outside the panels."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from PIL import Image

from bertdrift import plots
from bertdrift.config import EDGE_TASKS, TASKS

RNG = np.random.default_rng(0)


def _sim(hue: str, names) -> pd.DataFrame:
    rows = [{hue: n, "layers": layer, "seed": s, "rsa": RNG.random(), "cka": RNG.random(),
             "rsa_low": 0.1, "rsa_high": 0.9, "in_domain": n == "mnli", "task": "mnli",
             "domain": n}
            for n in names for layer in range(7) for s in (0, 1)]
    return pd.DataFrame(rows)


def _figures():
    models = ["parsing", "pretrained", "mnli"]
    edge = pd.DataFrame([{"task": t, "model": m, "layer": str(layer), "seed": s,
                          "score": RNG.random(), "metric": "micro_f1"}
                         for t in EDGE_TASKS for m in models for layer in [*range(7), "mix"]
                         for s in (0, 1)])
    mix = pd.DataFrame([{"task": t, "model": m, "seed": 0, "layer": layer, "weight": 1 / 7}
                        for t in EDGE_TASKS for m in models for layer in range(7)])
    structural = pd.DataFrame([{"metric": k, "model": m, "layer": layer, "seed": 0,
                                "value": RNG.random()}
                               for k in ("uuas", "dspr", "root_acc", "nspr") for m in models
                               for layer in range(7)])
    control = pd.DataFrame([{"task": t, "model": m, "layer": layer, "seed": 0,
                             "selectivity": 0.1, "control_score": 0.5}
                            for t in ("pos", "deps") for m in models for layer in range(7)])
    hist = pd.DataFrame([{"task": t, "seed": s, "epoch": e, "train_loss": 1 / e,
                          "metric": "dev_las", "score": 50 + e}
                         for t in TASKS for s in (0, 1) for e in (1, 2, 3)])
    freeze = pd.DataFrame([{"task": t, "k": k, "seed": 0, "metric": "dev_las", "score": 80 - k}
                           for t in TASKS for k in range(7)])
    repl = pd.DataFrame([{"task": t, "j": j, "side": side, "seed": 0, "metric": "dev_f1",
                          "score": 80 - j} for t in TASKS for j in range(7)
                         for side in ("top", "bottom")])
    dom = pd.concat([_sim("domain", ["gum", "mnli", "wikitext"]).assign(task=t) for t in TASKS])
    change = pd.DataFrame([{"task": t, "layers": layer, "change": 0.01 * layer,
                            "change_low": 0.01 * layer - 0.005,
                            "change_high": 0.01 * layer + 0.005}
                           for t in TASKS for layer in range(7)])
    geo = pd.DataFrame({"layer": range(7), "anisotropy": RNG.random(7),
                        "cos_to_previous": [np.nan, *RNG.random(6)]})
    return {
        "layer_geometry": plots.layer_geometry(geo, "tiny"),
        "layer_similarity": plots.layer_similarity(_sim("task", ["squad", "mnli"]), "tiny"),
        "similarity_maps": plots.similarity_maps({t: RNG.random((7, 7)) for t in TASKS}, "tiny"),
        "domain_similarity": plots.domain_similarity(dom, "tiny"),
        "finetune_curves": plots.finetune_curves(hist, "tiny"),
        "probing_layers": plots.probing_layers(edge, "tiny"),
        "probing_expected_layer": plots.probing_expected_layer(mix, "tiny"),
        "structural_probes": plots.structural_probes(structural, "tiny"),
        "probing_selectivity": plots.probing_selectivity(control, "tiny"),
        "freezing_curve": plots.freezing_curve(freeze, "tiny", analogous_k=4),
        "replacement_curve": plots.replacement_curve(repl, "tiny"),
        "corrected_change": plots.corrected_change(change, "tiny"),
    }


def test_palette_is_one_colour_per_category_and_pretrained_is_black():
    assert plots.color("pretrained") == "#000000"
    assert len({plots.color(t) for t in TASKS}) == 3
    assert len({plots.color(t) for t in EDGE_TASKS}) == len(EDGE_TASKS)
    assert plots.order(["squad", "pretrained", "x", "mnli"]) == ["pretrained", "mnli", "squad",
                                                                   "x"]
    assert plots.label("micro_f1") == "micro-averaged F1 (%)"
    assert plots.label("some_column") == "some column"
    assert plots.domain_name("gum") == "GENTLE (gum)" and plots.domain_name("mnli") == "mnli"


def test_domain_legend_names_the_corpus_behind_each_key():
    dom = pd.concat([_sim("domain", ["gum", "mnli", "wikitext"]).assign(task=t) for t in TASKS])
    fig = plots.domain_similarity(dom, "tiny")
    names = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
    assert {"GENTLE (gum)", "WikiText-2 (wikitext)", "mnli"} <= names


NAMES = ["layer_geometry", "layer_similarity", "similarity_maps", "domain_similarity",
         "finetune_curves", "probing_layers", "probing_expected_layer", "structural_probes",
         "probing_selectivity", "freezing_curve", "replacement_curve", "corrected_change"]


@pytest.fixture(scope="module")
def figures():
    figs = _figures()
    assert sorted(figs) == sorted(NAMES)
    yield figs
    plt.close("all")


@pytest.mark.parametrize("name", NAMES)
def test_figure_fits_the_column_with_legend_outside(figures, name):
    fig = figures[name]
    assert fig.get_size_inches()[0] <= plots.MAX_WIDTH + 1e-6, name
    assert all(ax.get_legend() is None for ax in fig.axes), f"{name}: legend inside a panel"
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    width = Image.open(buf).size[0]
    assert width <= 830, f"{name}: {width} px wide"
    for ax in fig.axes:
        assert "_" not in ax.get_ylabel(), f"{name}: raw column name {ax.get_ylabel()!r}"
