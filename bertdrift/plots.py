"""Figures: one function per figure kind, each returning its ``matplotlib`` figure.

Every figure carries a title, labelled axes and a caption line naming the model and profile that
produced it (``stamp``), plus confidence intervals or seed spread where the data has them.

**One palette and one order for the whole book** live here and nowhere else: ``PALETTE`` maps
every category the book plots (tasks, models, input domains, edge-probing tasks, replacement
sides) to a colour-blind-safe colour (Okabe & Ito for tasks, models and domains; Paul Tol's
"muted" set for the nine edge-probing tasks); ``ORDER`` gives each kind of category its reading
order. A task keeps its colour in every chapter (MNLI blue, SQuAD orange, parsing green) and
``pretrained`` is always black. Use ``colors(names)`` / ``order(names)`` in new figure functions,
``label(column)`` for axis labels (``"micro_f1"`` → ``"micro-averaged F1 (%)"``) and
``legend_outside`` instead of ``ax.legend`` so legends never cover data.

**Sizes.** A figure is at most ``MAX_WIDTH`` (7.5 in) wide and drawn at ``DPI`` (100), so its
PNG is ≤ 750 px wide and the book (content column ≈ 720–800 px at a 1280 px window) shows it at
(nearly) its natural size: 10 pt tick labels render at ≈ 14 px. ``new_figure`` enforces the width
by shrinking panels; lay out many panels in rows (``ncols`` ≤ 3), never in one long strip.

**In a notebook**, show a figure as a numbered MyST figure with a caption that says what to look
for, and numbers glued from the package::

    fig = plots.layer_similarity(frame, profile)
    glue("fig_rsa_layers", fig, display=False)      # from myst_nb import glue

and in the next Markdown cell::

    ```{glue:figure} fig_rsa_layers
    :name: fig-rsa-layers

    RSA between pre-trained and fine-tuned layers. Look at the top layers: MNLI falls to
    {glue:text}`rsa_top_mnli:.2f` ...
    ```

then refer to it from the text with ``{numref}`Figure %s <fig-rsa-layers>```.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg") if matplotlib.get_backend().lower() == "" else None

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bertdrift.config import DOMAINS, EDGE_TASKS, MODELS, TASKS, Profile  # noqa: E402

# --- sizes and fonts ------------------------------------------------------------------------
MAX_WIDTH = 7.5
"""Widest figure in inches: at ``DPI`` its PNG fits the book's content column unscaled."""
DPI = 100
"""Pixels per inch of figures, on screen and saved (so 1 pt of text = 1.39 px)."""

RC: dict[str, object] = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "font.size": 10.5,
    "axes.titlesize": 11,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9.5,
    "legend.title_fontsize": 10,
    "figure.titlesize": 12,
    "lines.markersize": 5,
}
sns.set_theme(context="notebook", style="whitegrid", rc=RC)
matplotlib.rcParams.update(RC)

# --- one palette and one order ----------------------------------------------------------------
_OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
              "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
              "purple": "#CC79A7", "grey": "#999999"}
_TOL_MUTED = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
              "#882255", "#AA4499")

PALETTE: dict[str, str] = {
    # fine-tuning tasks, the models fine-tuned on them and their own input domains
    "mnli": _OKABE_ITO["blue"],
    "squad": _OKABE_ITO["orange"],
    "parsing": _OKABE_ITO["green"],
    # reference models
    "pretrained": _OKABE_ITO["black"],
    "random": _OKABE_ITO["grey"],
    # out-of-domain text
    "wikitext": _OKABE_ITO["purple"],
    "brown": _OKABE_ITO["vermillion"],
    "gum": _OKABE_ITO["sky"],
    # layer replacement sides
    "top": "#332288",
    "bottom": "#CC6677",
    # the nine edge-probing tasks, in config.EDGE_TASKS order
    **dict(zip(EDGE_TASKS, _TOL_MUTED, strict=True)),
}
"""Colour of every category the book plots; a name has the same colour in every figure."""

ORDER: dict[str, tuple[str, ...]] = {
    "task": TASKS,
    "model": (*MODELS, "random"),
    "domain": DOMAINS,
    "edge_task": EDGE_TASKS,
    "side": ("top", "bottom"),
}
"""Reading order of each kind of category (tables use it too: ``bertdrift.tables``)."""

_ALL_ORDER: tuple[str, ...] = tuple(dict.fromkeys(
    n for kind in ("model", "domain", "edge_task", "side") for n in ORDER[kind]))
_FALLBACK = ("#777777", "#BBBBBB", "#444444", "#DDDDDD")

LABELS: dict[str, str] = {
    # fine-tuning metrics (already in %)
    "dev_matched_accuracy": "MNLI matched accuracy (%)",
    "dev_mismatched_accuracy": "MNLI mismatched accuracy (%)",
    "matched_accuracy": "MNLI matched accuracy (%)",
    "dev_f1": "SQuAD F1 (%)",
    "dev_exact_match": "SQuAD exact match (%)",
    "exact_match": "exact match (%)",
    "dev_las": "labelled attachment score (%)",
    "dev_uas": "unlabelled attachment score (%)",
    "las": "labelled attachment score (%)",
    "uas": "unlabelled attachment score (%)",
    "accuracy": "accuracy (%)",
    "f1": "F1 (%)",
    "micro_f1": "micro-averaged F1 (%)",
    "macro_f1": "macro-averaged F1 (%)",
    "mcc": "Matthews correlation",
    "auc": "ROC AUC",
    "score": "score (%)",
    "train_loss": "mean training loss",
    "loss": "loss",
    # structural probes
    "uuas": "UUAS (undirected attachment)",
    "dspr": "Spearman ρ (distance)",
    "root_acc": "root accuracy (depth)",
    "nspr": "Spearman ρ (depth)",
    # probing extras
    "selectivity": "selectivity (points)",
    "control_score": "control-task accuracy (%)",
    "centre_of_gravity": "centre of gravity Σ l·sₗ",
    "tenney_f1": "micro-F1, sigmoid per label (%)",
    "weight": "scalar-mix weight s_l",
    # similarity measures
    "rsa": "RSA (Pearson, cosine)",
    "change": "ceiling-corrected change 1 − RSA",
    "cka": "linear CKA",
    "cka_debiased": "debiased linear CKA",
    "procrustes": "Procrustes similarity",
    "anisotropy": "mean cosine, random word pairs",
    "cos_to_previous": "cosine to the layer below",
    # axes
    "layer": "layer (0 = embeddings)",
    "layers": "layer (0 = embeddings)",
    "k": "frozen layers k (+ embeddings)",
    "j": "layers reverted to pre-trained (j)",
    "epoch": "epoch",
    "step": "training step",
    "fraction": "fraction of fine-tuning",
    "seed": "seed",
    # categories as titles
    "task": "task",
    "model": "model",
    "domain": "input domain",
    "edge_task": "probing task",
}
"""Human axis labels for the column names the package's frames use."""


DOMAIN_NAMES: dict[str, str] = {"wikitext": "WikiText-2 (wikitext)", "gum": "GENTLE (gum)"}
"""Legend names of the input domains whose key is not the corpus's name (the task domains keep
their task's name)."""


def domain_name(key: object) -> str:
    """The legend name of an input domain key (``"gum"`` → ``"GENTLE (gum)"``)."""
    return DOMAIN_NAMES.get(str(key), str(key))


def label(column: str) -> str:
    """A human axis label for a column or metric name (``"dev_las"`` → ``"labelled attachment
    score (%)"``); unknown names come back with underscores as spaces."""
    return LABELS.get(column, str(column).replace("_", " "))


def color(name: str) -> str:
    """The book's colour of one category (task, model, domain, edge task); grey if unknown."""
    return PALETTE.get(str(name), _FALLBACK[0])


def order(names: Iterable[object], kind: str | None = None) -> list[str]:
    """``names`` (e.g. ``frame["task"].unique()``) sorted in the book's order; names the book
    does not know keep their order of appearance, after the known ones. ``kind`` ("task",
    "model", "domain", "edge_task", "side") restricts which order is used."""
    present = [str(n) for n in dict.fromkeys(names)]
    ref = ORDER[kind] if kind else _ALL_ORDER
    return [n for n in ref if n in present] + [n for n in present if n not in ref]


def colors(names: Iterable[object]) -> dict[str, str]:
    """``{name: colour}`` for ``names`` in the book's palette (a seaborn ``palette=`` argument);
    unknown names get distinct greys."""
    out: dict[str, str] = {}
    unknown = 0
    for n in order(names):
        if n in PALETTE:
            out[n] = PALETTE[n]
        else:
            out[n] = _FALLBACK[unknown % len(_FALLBACK)]
            unknown += 1
    return out


def legend_outside(fig: Figure, axes: Axes | Iterable[Axes] | None = None,
                   where: str = "below", title: str | None = None,
                   ncol: int | None = None) -> None:
    """Replace the axes' legends by one figure legend outside the data: ``"below"`` the panels
    (default) or to the ``"right"`` of them. Entries are gathered from ``axes`` (default: all)
    without duplicates. Saved and displayed figures use ``bbox_inches="tight"``, so the legend is
    part of the image."""
    axs = list(fig.axes if axes is None else [axes] if isinstance(axes, Axes) else axes)
    handles, labels = [], []
    for ax in axs:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            if title is None:
                title = ax.get_legend().get_title().get_text() or None
            ax.get_legend().remove()
    if not handles:
        return
    if where == "right":
        fig.legend(handles, labels, title=title, loc="center left", bbox_to_anchor=(1.0, 0.5),
                   frameon=False)
    else:
        fig.legend(handles, labels, title=title, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=ncol or min(len(labels), 5), frameon=False)


def stamp(fig: Figure, profile: Profile | str, extra: str = "") -> Figure:
    """Write 'model · profile' (and ``extra``) under the figure, bottom right."""
    text = profile if isinstance(profile, str) else profile.describe()
    if extra:
        text = f"{text} · {extra}"
    fig.text(0.99, 0.005, text, ha="right", va="bottom", fontsize=8.5, color="0.35")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    """A grid of panels, each ``width`` × ``height`` inches, shrunk (keeping the aspect, down to
    2.2 in high) so the figure is at most ``MAX_WIDTH`` wide. Returns ``(fig, axes)`` with a 2-D
    ``axes`` array."""
    if width * ncols > MAX_WIDTH:
        scale = MAX_WIDTH / (width * ncols)
        width, height = width * scale, max(height * scale, min(height, 2.2))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    """(ncols, nrows) for ``n`` panels, at most ``max_cols`` per row."""
    ncols = min(n, max_cols) or 1
    return ncols, -(-n // ncols)


# --- figure functions (one per figure kind) -------------------------------------------------


def layer_geometry(table, profile: Profile | str, corpus: str = "") -> Figure:
    """Anisotropy and layer-to-layer similarity of word vectors through depth."""
    fig, axes = new_figure(ncols=2, width=3.75, height=3.0)
    ax = axes[0, 0]
    sns.lineplot(data=table, x="layer", y="anisotropy", marker="o", ax=ax,
                 color=color("pretrained"))
    ax.set(title="Anisotropy per layer", xlabel=label("layer"), ylabel=label("anisotropy"))
    ax = axes[0, 1]
    sns.lineplot(data=table.dropna(), x="layer", y="cos_to_previous", marker="o", ax=ax,
                 color=color("pretrained"))
    ax.set(title="How much each layer rewrites a word", xlabel=label("layer"),
           ylabel=label("cos_to_previous"))
    return stamp(fig, profile, corpus)


def layer_similarity(frame, profile: Profile | str, measures: tuple[str, ...] = ("rsa", "cka"),
                     hue: str = "task", title: str = "") -> Figure:
    """Similarity to the pre-trained model per layer, one panel per measure, one line per ``hue``.

    Shaded: the bootstrap interval (``<measure>_low``/``_high``; averaged over seeds); thin lines:
    individual seeds when there are several.
    """
    ncols, nrows = _grid(len(measures))
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=3.75, height=3.0)
    palette = colors(frame[hue])
    for ax, measure in zip(axes.flat, measures, strict=False):
        for name in palette:
            g = frame[frame[hue].astype(str) == name]
            c = palette[name]
            mean = g.groupby("layers")[measure].mean()
            ax.plot(mean.index, mean.values, marker="o", color=c, label=name)
            if f"{measure}_low" in g:
                lo = g.groupby("layers")[f"{measure}_low"].mean()
                hi = g.groupby("layers")[f"{measure}_high"].mean()
                ax.fill_between(lo.index, lo.values, hi.values, color=c, alpha=0.25)
            if "seed" in g and g["seed"].nunique() > 1:
                for _, s in g.groupby("seed"):
                    ax.plot(s["layers"], s[measure], color=c, lw=0.7, alpha=0.5)
        ax.set_xlabel(label("layers"))
        ax.set_ylabel(f"{label(measure)} to pre-trained")
        ax.set_title(label(measure))
    for ax in list(axes.flat)[len(measures):]:
        ax.set_visible(False)
    legend_outside(fig, title=label(hue))
    if title:
        fig.suptitle(title)
    return stamp(fig, profile)


def similarity_maps(maps: dict[str, object], profile: Profile | str,
                    measure: str = "RSA") -> Figure:
    """Layer x layer heatmaps (pre-trained layer on y, fine-tuned layer on x), one per model,
    at most two per row so the cell annotations stay legible."""
    import numpy as np

    ncols, nrows = _grid(len(maps), max_cols=2)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=3.75, height=3.4)
    for ax, (name, m) in zip(axes.flat, maps.items(), strict=False):
        arr = np.asarray(m)
        sns.heatmap(arr, ax=ax, vmin=min(0.0, float(arr.min())), vmax=1.0, cmap="viridis",
                    annot=arr.shape[0] <= 8, fmt=".2f", annot_kws={"fontsize": 8},
                    cbar=True, cbar_kws={"shrink": 0.8}, square=arr.shape[0] <= 8)
        ax.set_xlabel(f"{name}: fine-tuned layer")
        ax.set_ylabel("pre-trained layer")
        ax.set_title(f"{measure}: {name}", color=color(name) if name in PALETTE else "black")
    for ax in list(axes.flat)[len(maps):]:
        ax.set_visible(False)
    return stamp(fig, profile)


def domain_similarity(frame, profile: Profile | str, measure: str = "rsa") -> Figure:
    """Per fine-tuned model, similarity to pre-trained per layer on each input domain (the
    task's own domain drawn thick)."""
    tasks = order(frame["task"], "task")
    ncols, nrows = _grid(len(tasks))
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=2.5, height=2.8)
    palette = colors(frame["domain"])
    for ax, task in zip(axes.flat, tasks, strict=False):
        g = frame[frame["task"].astype(str) == task]
        for domain in palette:
            d = g[g["domain"].astype(str) == domain]
            if d.empty:
                continue
            mean = d.groupby("layers")[measure].mean()
            own = bool(d["in_domain"].iloc[0])
            ax.plot(mean.index, mean.values, marker="o" if own else ".", lw=2.6 if own else 1.2,
                    color=palette[domain], label=domain_name(domain))
        ax.set_title(f"fine-tuned on {task}", color=color(task))
        ax.set_xlabel(label("layers"))
        ax.set_ylabel(f"{label(measure)} to pre-trained" if ax in axes[:, 0] else "")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    legend_outside(fig, title="input domain (thick: the task's own)")
    return stamp(fig, profile)


def finetune_curves(history, profile: Profile | str, note: str = "") -> Figure:
    """Learning curves of fine-tuning: training loss (top) and the task's dev score (bottom)
    after every epoch, one column per task, one line per seed (in the task's colour, seeds told
    apart by line style).

    ``history`` is a tidy frame with columns ``task, seed, epoch, train_loss, metric, score``.
    """
    tasks = order(history["task"], "task")
    fig, axes = new_figure(ncols=len(tasks), nrows=2, width=2.5, height=2.5)
    styles = ("-", "--", ":", "-.")
    for col, task in enumerate(tasks):
        g = history[history["task"].astype(str) == task]
        for i, (seed, s) in enumerate(g.groupby("seed")):
            kw = {"marker": "o", "color": color(task), "ls": styles[i % len(styles)],
                  "label": f"seed {seed}"}
            axes[0, col].plot(s["epoch"], s["train_loss"], **kw)
            axes[1, col].plot(s["epoch"], s["score"], **kw)
        axes[0, col].set(xlabel="epoch", ylabel=label("train_loss") if col == 0 else "")
        axes[0, col].set_title(task, color=color(task))
        axes[1, col].set(xlabel="epoch", ylabel=label(str(g["metric"].iloc[0])))
        for ax in axes[:, col]:
            ax.xaxis.get_major_locator().set_params(integer=True)
    legend_outside(fig, axes[:, 0])
    return stamp(fig, profile, note)


# --- probing (03_probing) ---------------------------------------------------------------------


def _model_order(frame) -> list[str]:
    return order(frame["model"], "model")


def probing_layers(edge, profile: Profile | str, ncols: int = 3) -> Figure:
    """Edge-probe score per layer, one panel per task, a line per model (mean and seed spread);
    the scalar-mix probe as a dashed line."""
    tasks = order(edge["task"], "edge_task")
    ncols, nrows = _grid(len(tasks), min(ncols, 3))
    fig, axes = new_figure(ncols, nrows, width=2.5, height=2.3)
    models = _model_order(edge)
    palette = colors(models)
    per_layer = edge[edge["layer"].astype(str) != "mix"].assign(
        layer=lambda d: d["layer"].astype(int), score=lambda d: 100 * d["score"])
    for ax, task in zip(axes.flat, tasks, strict=False):
        sub = per_layer[per_layer["task"].astype(str) == task]
        sns.lineplot(sub, x="layer", y="score", hue="model", hue_order=models, palette=palette,
                     errorbar="sd", marker="o", ax=ax, legend=ax is axes.flat[0])
        mix = edge[(edge["task"].astype(str) == task) & (edge["layer"].astype(str) == "mix")]
        for model, m in mix.groupby("model"):
            ax.axhline(100 * m["score"].mean(), ls="--", lw=1, color=palette[str(model)])
        metric = str(sub["metric"].iloc[0]) if len(sub) else ""
        ax.set(title=task, xlabel=label("layer") if ax in axes[-1] else "layer",
               ylabel=label(metric) if ax in axes[:, 0] else "")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    legend_outside(fig, title="model")
    fig.suptitle("Edge probes per layer (dashed: scalar mix), mean ± sd over seeds")
    return stamp(fig, profile)


def probing_expected_layer(mix, profile: Profile | str) -> Figure:
    """Centre of gravity sum_l l s_l of each task's scalar-mix weights, per model, beside the
    uniform-weights value L/2 (not Tenney et al.'s cumulative-probe expected layer)."""
    e = (mix.assign(lw=mix["layer"] * mix["weight"])
         .groupby(["task", "model", "seed"], as_index=False)["lw"].sum())
    fig, axes = new_figure(width=7.0, height=3.2)
    ax = axes[0, 0]
    models = _model_order(e)
    sns.pointplot(e, x="task", y="lw", hue="model", hue_order=models, palette=colors(models),
                  order=order(e["task"], "edge_task"), errorbar="sd",
                  dodge=0.4 if len(models) > 1 else False, linestyle="none", ax=ax)
    ax.axhline(float(mix["layer"].max()) / 2, ls=":", color="0.4", label="uniform weights")
    ax.set(ylabel=label("centre_of_gravity"), xlabel="probing task",
           title="Scalar-mix centre of gravity (dotted: uniform weights)")
    ax.set_ylim(0, int(mix["layer"].max()))
    legend_outside(fig, title="model")
    return stamp(fig, profile)


def structural_probes(structural, profile: Profile | str) -> Figure:
    """Structural-probe metrics per layer (UUAS, DSpr., root accuracy, NSpr.), a line per model,
    two panels per row."""
    names = {"uuas": "UUAS (distance probe)", "dspr": "Spearman ρ (distance probe)",
             "root_acc": "root accuracy (depth probe)", "nspr": "Spearman ρ (depth probe)"}
    metrics = [m for m in names if m in set(structural["metric"])]
    ncols, nrows = _grid(len(metrics), max_cols=2)
    fig, axes = new_figure(ncols, nrows, width=3.75, height=2.6)
    models = _model_order(structural)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        sub = structural[structural["metric"] == metric]
        sns.lineplot(sub, x="layer", y="value", hue="model", hue_order=models,
                     palette=colors(models), errorbar="sd", marker="o", ax=ax,
                     legend=ax is axes.flat[0])
        ax.set(title=names[metric], xlabel=label("layer"), ylabel=label(metric))
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    legend_outside(fig, title="model")
    fig.suptitle("Structural probes (Hewitt & Manning 2019) on UD EWT dev")
    return stamp(fig, profile)


def probing_selectivity(control, profile: Profile | str) -> Figure:
    """Task accuracy, control accuracy and selectivity per layer for the control tasks."""
    tasks = order(control["task"], "edge_task")
    fig, axes = new_figure(len(tasks), 2, width=3.75, height=2.6)
    models = _model_order(control)
    data = control[control["layer"].astype(str) != "mix"].assign(
        layer=lambda d: d["layer"].astype(int),
        selectivity=lambda d: 100 * d["selectivity"],
        control_score=lambda d: 100 * d["control_score"])
    for j, task in enumerate(tasks):
        sub = data[data["task"].astype(str) == task]
        for i, col in enumerate(("selectivity", "control_score")):
            ax = axes[i, j]
            sns.lineplot(sub, x="layer", y=col, hue="model", hue_order=models,
                         palette=colors(models), errorbar="sd", marker="o", ax=ax,
                         legend=(i == 0 and j == 0))
            ax.set(title=f"{task}: {label(col).split(' (')[0]}", xlabel=label("layer"),
                   ylabel=label(col))
    legend_outside(fig, title="model")
    fig.suptitle("Control tasks (Hewitt & Liang 2019): selectivity = task − control accuracy")
    return stamp(fig, profile)


def freezing_curve(frame, profile: Profile | str, analogous_k: int | None = None) -> Figure:
    """Task score against the number of frozen bottom layers, one panel per task.

    ``frame``: ``bertdrift.ablations.freezing_sweep`` (columns ``task, k, seed, metric,
    score``). Line: mean over seeds; shaded: min..max over seeds; dots: individual seeds.
    ``analogous_k`` draws a dashed line at the depth matching the paper's 8 of 12 layers.
    """
    tasks = order(frame["task"], "task")
    fig, axes = new_figure(ncols=len(tasks), width=2.5, height=2.8)
    for ax, task in zip(axes[0], tasks, strict=True):
        g = frame[frame["task"].astype(str) == task]
        stats = g.groupby("k")["score"].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], marker="o", color=color(task))
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color(task), alpha=0.25)
        ax.scatter(g["k"], g["score"], s=10, color="0.3", zorder=3)
        if analogous_k is not None:
            ax.axvline(analogous_k, ls="--", color="0.5", lw=1)
        ax.set(xlabel=label("k"), ylabel=label(str(g["metric"].iloc[0])))
        ax.set_title(task, color=color(task))
        ax.set_xticks(sorted(g["k"].unique()))
    n_seeds = int(frame["seed"].nunique())
    return stamp(fig, profile, f"{n_seeds} seed(s); band = seed min..max")


def replacement_curve(frame, profile: Profile | str, tolerance: float = 1.0) -> Figure:
    """Score of a fine-tuned model with its top / bottom ``j`` layers reverted to pre-trained,
    one panel per task; the band marks ``tolerance`` points below the unreverted score."""
    tasks = order(frame["task"], "task")
    fig, axes = new_figure(ncols=len(tasks), width=2.5, height=2.8)
    for ax, task in zip(axes[0], tasks, strict=True):
        g = frame[frame["task"].astype(str) == task]
        for side in ("top", "bottom"):
            s = g[g["side"] == side].groupby("j")["score"].agg(["mean", "min", "max"])
            ax.plot(s.index, s["mean"], marker="o", color=color(side),
                    ls="-" if side == "top" else "--", label=f"revert {side} j")
            if g["seed"].nunique() > 1:
                ax.fill_between(s.index, s["min"], s["max"], color=color(side), alpha=0.2)
        base = float(g[g["j"] == 0]["score"].mean())
        ax.axhspan(base - tolerance, base, color="0.85", zorder=0)
        ax.set(xlabel=label("j"), ylabel=label(str(g["metric"].iloc[0])))
        ax.set_title(task, color=color(task))
        ax.set_xticks(sorted(g["j"].unique()))
    legend_outside(fig)
    return stamp(fig, profile, f"grey band: within {tolerance:g} point of the fine-tuned model")


# --- seeds, noise ceilings and weights (04_rsa, issue 14) -----------------------------------------
def similarity_with_ceiling(frame, ceilings, profile: Profile | str, measure: str = "rsa",
                            title: str = "") -> Figure:
    """Per task: pre-trained vs fine-tuned ``measure`` per layer, mean over seeds (line),
    seed min..max (band) and each seed (dots), beside the seed-to-seed noise ceiling
    (dashed: two fine-tuned seeds of the same task compared with each other)."""
    tasks = list(dict.fromkeys(frame["task"]))
    fig, axes = new_figure(ncols=len(tasks), width=3.8, height=3.2)
    for ax, task in zip(axes[0], tasks, strict=False):
        g = frame[frame["task"] == task]
        stats = g.groupby("layers")[measure].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], marker="o", label="pre vs fine-tuned")
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.25,
                        label="seed min..max")
        ax.scatter(g["layers"], g[measure], s=8, color="0.3", zorder=3)
        c = ceilings[ceilings["task"] == task]
        ax.plot(c["layers"], c["ceiling"], ls="--", color="k", label="seed vs seed (ceiling)")
        ax.set(title=task, xlabel="layer (0 = embeddings)", ylabel=measure.upper())
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    n = int(frame["seed"].nunique())
    return stamp(fig, profile, f"{n} seed(s)")


def corrected_change(table, profile: Profile | str, title: str = "") -> Figure:
    """The ceiling-corrected change per layer (``drift_evidence.change_table``): a line per
    task with its 95 % interval (words and seeds) as a band, and the null (0) dashed."""
    fig, axes = new_figure(width=5.0, height=3.4)
    ax = axes[0, 0]
    palette = colors(table["task"])
    for name, c in palette.items():
        g = table[table["task"].astype(str) == name].sort_values("layers")
        ax.plot(g["layers"], g["change"], marker="o", color=c, label=name)
        ax.fill_between(g["layers"], g["change_low"], g["change_high"], color=c, alpha=0.2)
    ax.axhline(0, color="k", lw=0.8, ls="--")
    ax.set(xlabel=label("layers"), ylabel=label("change"),
           title=title or "Change beyond the seeds' noise, per layer")
    legend_outside(fig, title=label("task"))
    return stamp(fig, profile)


def weight_change(weights, profile: Profile | str) -> Figure:
    """Relative weight change ``‖W_ft − W_pre‖ / ‖W_pre‖`` per depth (0 = embeddings), a line
    per task (mean over seeds) with the seed min..max band: a view that needs no stimuli."""
    fig, axes = new_figure(width=5.0, height=3.4)
    ax = axes[0, 0]
    for task, g in weights.groupby("task", sort=False):
        stats = g.groupby("layers")["weight_change"].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], marker="o", label=str(task))
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2)
    ax.set(xlabel="depth (0 = embeddings)", ylabel="‖W_ft − W_pre‖ / ‖W_pre‖",
           title="Relative weight change per layer")
    ax.legend(fontsize=8)
    return stamp(fig, profile, f"{int(weights['seed'].nunique())} seed(s)")


# --- chapter 7: along the fine-tuning trajectory ---------------------------------------------
def _trajectory_axis(ax, fractions) -> None:
    """x axis for snapshot fractions 0, 1/32, ..., 1: symmetric-log so the early, closely
    spaced snapshots stay visible."""
    import numpy as np

    positive = [f for f in fractions if f > 0]
    low = min(positive) if positive else 0.01
    ax.set_xscale("symlog", linthresh=low)
    ticks = [0.0] + [2.0 ** -k for k in range(6, -1, -1) if 2.0 ** -k >= low / 1.5]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["0" if t == 0 else ("1" if t == 1 else f"1/{round(1 / t)}")
                        if np.isclose(1 / t, round(1 / t)) else f"{t:.2g}" for t in ticks],
                       fontsize=7)
    ax.set_xlabel("fraction of fine-tuning steps")


def dynamics_similarity(traj, profile: Profile | str, measure: str = "rsa") -> Figure:
    """Per-layer similarity to the pre-trained model against the snapshot's step, one panel
    per task, one line per layer (dark = bottom, light = top), seed mean; band = seed min..max.
    ``traj``: ``bertdrift.dynamics.trajectory``."""
    tasks = list(dict.fromkeys(traj["task"]))
    layers = sorted(int(x) for x in traj["layer"].unique() if x > 0)
    cmap = plt.get_cmap("viridis")
    fig, axes = new_figure(ncols=len(tasks), width=4.0)
    for ax, task in zip(axes[0], tasks, strict=True):
        g = traj[traj["task"] == task]
        for i, layer in enumerate(layers):
            s = g[g["layer"] == layer].groupby("fraction")[measure].agg(["mean", "min", "max"])
            color = cmap(0.85 * i / max(1, len(layers) - 1))
            ax.plot(s.index, s["mean"], marker="o", ms=3, color=color, label=f"layer {layer}")
            if g["seed"].nunique() > 1:
                ax.fill_between(s.index, s["min"], s["max"], color=color, alpha=0.15)
        _trajectory_axis(ax, g["fraction"].unique().tolist())
        ax.set(title=task, ylabel=f"{measure.upper()} with pre-trained")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    n_seeds = int(traj["seed"].nunique())
    return stamp(fig, profile, f"{n_seeds} seed(s)")


def dynamics_heatmap(traj, profile: Profile | str, measure: str = "rsa") -> Figure:
    """Layer × snapshot heatmap of the change ``1 - measure`` (seed mean), one panel per task;
    a shared colour scale, so tasks compare directly."""
    import numpy as np

    tasks = list(dict.fromkeys(traj["task"]))
    fig, axes = new_figure(ncols=len(tasks), width=4.0, height=3.4)
    t = traj[traj["layer"] > 0].assign(change=lambda d: 1.0 - d[measure])
    vmax = float(np.nanmax(t.groupby(["task", "layer", "step"])["change"].mean()))
    for ax, task in zip(axes[0], tasks, strict=True):
        m = (t[t["task"] == task].pivot_table(index="layer", columns="step", values="change",
                                              aggfunc="mean").sort_index(ascending=False))
        sns.heatmap(m, ax=ax, vmin=0, vmax=vmax, cmap="magma_r", cbar=ax is axes[0][-1],
                    cbar_kws={"label": f"1 − {measure.upper()}"})
        ax.set(title=task, xlabel="step", ylabel="layer")
    return stamp(fig, profile, f"{int(traj['seed'].nunique())} seed(s), mean")


def dynamics_probes(probes, profile: Profile | str) -> Figure:
    """Probe score against the snapshot's step: rows = probe tasks, columns = fine-tuning
    tasks, one line per layer (dark = bottom, light = top), mean over fine-tuning and probe seeds.
    ``probes``: ``bertdrift.dynamics.probe_trajectory``."""
    tasks = list(dict.fromkeys(probes["task"]))
    kinds = list(dict.fromkeys(probes["probe"]))
    layers = sorted(int(x) for x in probes["layer"].unique())
    cmap = plt.get_cmap("viridis")
    fig, axes = new_figure(ncols=len(tasks), nrows=len(kinds), width=4.0, height=3.0)
    for r, kind in enumerate(kinds):
        for c, task in enumerate(tasks):
            ax = axes[r][c]
            g = probes[(probes["task"] == task) & (probes["probe"] == kind)]
            for i, layer in enumerate(layers):
                s = g[g["layer"] == layer].groupby("fraction")["score"].mean()
                ax.plot(s.index, s.values, marker="o", ms=3, label=f"layer {layer}",
                        color=cmap(0.85 * i / max(1, len(layers) - 1)))
            _trajectory_axis(ax, g["fraction"].unique().tolist())
            metric = str(g["metric"].iloc[0]) if len(g) else ""
            ax.set(title=f"{kind} probe · {task}", ylabel=metric.replace("_", " "))
    axes[0][-1].legend(fontsize=7)
    return stamp(fig, profile, f"{int(probes['seed'].nunique())} fine-tuning seed(s)")


def dynamics_profile(prof, dev, profile: Profile | str, uniform: float | None = None) -> Figure:
    """Left: the depth profile (share of the change in the top third of the layers) against
    the snapshot's step, per task (seed mean, band = seed min..max; dashed: the share if every
    layer changed equally). Right: progress of the dev score and of the mean change, each as
    a fraction of its total change from step 0 to the end, per task."""
    tasks = list(dict.fromkeys(prof["task"]))
    fig, axes = new_figure(ncols=2, width=5.0)
    ax = axes[0][0]
    for i, task in enumerate(tasks):
        s = (prof[(prof["task"] == task) & (prof["step"] > 0)]
             .groupby("fraction")["share_top"].agg(["mean", "min", "max"]))
        ax.plot(s.index, s["mean"], marker="o", color=f"C{i}", label=task)
        if prof["seed"].nunique() > 1:
            ax.fill_between(s.index, s["min"], s["max"], color=f"C{i}", alpha=0.2)
    if uniform is not None:
        ax.axhline(uniform, ls="--", color="0.5", lw=1)
    _trajectory_axis(ax, prof["fraction"].unique().tolist())
    ax.set(title="share of change in the top third", ylabel="share")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    for i, task in enumerate(tasks):
        for frame, col, ls, what in ((dev, "score", "-", "dev score"),
                                     (prof, "mean_change", ":", "mean change")):
            s = frame[frame["task"] == task].groupby("fraction")[col].mean()
            gain = s.iloc[-1] - s.iloc[0]
            if gain != 0:
                ax.plot(s.index, (s - s.iloc[0]) / gain, ls=ls, marker="o", ms=3,
                        color=f"C{i}", label=f"{task}: {what}")
    ax.axhline(0.9, ls="--", color="0.5", lw=1)
    _trajectory_axis(ax, prof["fraction"].unique().tolist())
    ax.set(title="progress towards the final value", ylabel="fraction of total change")
    ax.legend(fontsize=7)
    return stamp(fig, profile, f"{int(prof['seed'].nunique())} seed(s)")
def probing_floors(vt, profile: Profile | str, ncols: int = 4) -> Figure:
    """Per task (its main metric): every model's score with its 95 % interval, beside the best
    trivial baseline (dashed) and the random-encoder floor; tasks at floor are titled so."""
    main = vt[vt["metric"] != "tenney_f1"].reset_index(drop=True)
    models = [m for m in ORDER["model"] if m in main.columns]
    nrows = -(-len(main) // ncols)
    fig, axes = new_figure(min(ncols, len(main)), nrows, width=1.85, height=2.4)
    palette = colors(models)
    for ax, row in zip(axes.flat, main.itertuples(), strict=False):
        r = row._asdict()
        for x, m in enumerate(models):
            lo, hi = r[f"{m}_lo"], r[f"{m}_hi"]
            ax.errorbar([x], [r[m]], yerr=[[r[m] - lo], [hi - r[m]]], fmt="o",
                        color=palette[m], capsize=3)
        ax.axhline(r["baseline"], ls="--", color="0.3", lw=1)
        ax.set_xticks(range(len(models)), models, rotation=60)
        flag = "informative" if r["informative"] else "at floor"
        ax.set_title(f"{r['task']}: {flag}")
        ax.set_ylabel(label(str(r["metric"])) if ax in axes[:, 0] else "")
    for ax in list(axes.flat)[len(main):]:
        ax.set_visible(False)
    fig.suptitle("Scores with 95 % intervals; dashed: best trivial baseline")
    return stamp(fig, profile)
