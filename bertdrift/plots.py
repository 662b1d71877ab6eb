"""Figures: one function per figure kind, each returning its ``matplotlib`` figure.

Every figure carries a title, labelled axes and a caption line naming the model and profile that
produced it (``stamp``), plus confidence intervals or seed spread where the data has them.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if matplotlib.get_backend().lower() == "" else None

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bertdrift.config import MODELS, PROBE_MODELS, Profile  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid")


def stamp(fig: Figure, profile: Profile | str, extra: str = "") -> Figure:
    """Write 'model · profile' (and ``extra``) under the figure, bottom right."""
    text = profile if isinstance(profile, str) else profile.describe()
    if extra:
        text = f"{text} · {extra}"
    fig.text(0.99, 0.005, text, ha="right", va="bottom", fontsize=8, color="0.35")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


# --- figure functions (one per figure kind) -------------------------------------------------


def layer_geometry(table, profile: Profile | str, corpus: str = "") -> Figure:
    """Anisotropy and layer-to-layer similarity of word vectors through depth."""
    fig, axes = new_figure(ncols=2, width=4.6)
    ax = axes[0, 0]
    sns.lineplot(data=table, x="layer", y="anisotropy", marker="o", ax=ax)
    ax.set(title="Anisotropy per layer", xlabel="layer (0 = embeddings)",
           ylabel="mean cosine, random word pairs")
    ax = axes[0, 1]
    sns.lineplot(data=table.dropna(), x="layer", y="cos_to_previous", marker="o", ax=ax,
                 color="C1")
    ax.set(title="How much each layer rewrites a word", xlabel="layer",
           ylabel="cosine to the layer below")
    return stamp(fig, profile, corpus)


def layer_similarity(frame, profile: Profile | str, measures: tuple[str, ...] = ("rsa", "cka"),
                     hue: str = "task", title: str = "") -> Figure:
    """Similarity to the pre-trained model per layer, one panel per measure, one line per ``hue``.

    Shaded: the bootstrap interval (``<measure>_low``/``_high``; averaged over seeds); thin lines:
    individual seeds when there are several.
    """
    labels = {"rsa": "RSA (cosine, Pearson)", "cka": "linear CKA",
              "cka_debiased": "debiased linear CKA", "procrustes": "Procrustes similarity"}
    fig, axes = new_figure(ncols=len(measures), width=4.8)
    palette = sns.color_palette("colorblind", frame[hue].nunique())
    for ax, measure in zip(axes[0], measures, strict=True):
        for color, (name, g) in zip(palette, frame.groupby(hue, sort=False), strict=False):
            mean = g.groupby("layers")[measure].mean()
            ax.plot(mean.index, mean.values, marker="o", color=color, label=str(name))
            if f"{measure}_low" in g:
                lo = g.groupby("layers")[f"{measure}_low"].mean()
                hi = g.groupby("layers")[f"{measure}_high"].mean()
                ax.fill_between(lo.index, lo.values, hi.values, color=color, alpha=0.25)
            if "seed" in g and g["seed"].nunique() > 1:
                for _, s in g.groupby("seed"):
                    ax.plot(s["layers"], s[measure], color=color, lw=0.7, alpha=0.5)
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel(f"{labels.get(measure, measure)} to pre-trained")
        ax.set_title(labels.get(measure, measure))
    axes[0][0].legend(title=hue, fontsize=8)
    if title:
        fig.suptitle(title)
    return stamp(fig, profile)


def similarity_maps(maps: dict[str, object], profile: Profile | str,
                    measure: str = "RSA") -> Figure:
    """Layer x layer heatmaps (pre-trained layer on y, fine-tuned layer on x), one per model."""
    import numpy as np

    fig, axes = new_figure(ncols=len(maps), width=4.2, height=3.8)
    for ax, (name, m) in zip(axes[0], maps.items(), strict=True):
        arr = np.asarray(m)
        sns.heatmap(arr, ax=ax, vmin=min(0.0, float(arr.min())), vmax=1.0, cmap="viridis",
                    annot=arr.shape[0] <= 8, fmt=".2f", annot_kws={"fontsize": 6},
                    cbar=ax is axes[0][-1])
        ax.set_xlabel(f"{name}: fine-tuned layer")
        ax.set_ylabel("pre-trained layer")
        ax.set_title(f"{measure}: {name}")
    return stamp(fig, profile)


def domain_similarity(frame, profile: Profile | str, measure: str = "rsa") -> Figure:
    """Per fine-tuned model, similarity to pre-trained per layer on each input domain."""
    tasks = list(dict.fromkeys(frame["task"]))
    fig, axes = new_figure(ncols=len(tasks), width=4.4)
    domains = list(dict.fromkeys(frame["domain"]))
    palette = dict(zip(domains, sns.color_palette("colorblind", len(domains)), strict=True))
    for ax, task in zip(axes[0], tasks, strict=True):
        g = frame[frame["task"] == task]
        for domain, d in g.groupby("domain", sort=False):
            mean = d.groupby("layers")[measure].mean()
            own = bool(d["in_domain"].iloc[0])
            ax.plot(mean.index, mean.values, marker="o" if own else ".", lw=2.6 if own else 1.2,
                    color=palette[domain], label=f"{domain}{' (own)' if own else ''}")
        ax.set_title(f"fine-tuned on {task}")
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel(f"{measure.upper()} to pre-trained")
        ax.legend(fontsize=7, title="input domain")
    return stamp(fig, profile)


def finetune_curves(history, profile: Profile | str) -> Figure:
    """Learning curves of fine-tuning: training loss (top) and the task's dev score (bottom)
    after every epoch, one column per task, one line per seed.

    ``history`` is a tidy frame with columns ``task, seed, epoch, train_loss, metric, score``.
    """
    tasks = list(dict.fromkeys(history["task"]))
    fig, axes = new_figure(ncols=len(tasks), nrows=2, width=3.8, height=2.9)
    for col, task in enumerate(tasks):
        g = history[history["task"] == task]
        for seed, s in g.groupby("seed"):
            axes[0, col].plot(s["epoch"], s["train_loss"], marker="o", label=f"seed {seed}")
            axes[1, col].plot(s["epoch"], s["score"], marker="o", label=f"seed {seed}")
        axes[0, col].set(title=task, xlabel="epoch", ylabel="mean training loss")
        axes[1, col].set(xlabel="epoch", ylabel=f"{g['metric'].iloc[0]} (%)")
        for ax in axes[:, col]:
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, 0].legend(fontsize=8)
    return stamp(fig, profile)


# --- probing (03_probing) ---------------------------------------------------------------------
_PROBE_MODELS = PROBE_MODELS


def _model_order(frame) -> list[str]:
    present = list(dict.fromkeys(frame["model"]))
    return [m for m in _PROBE_MODELS if m in present] + [m for m in present
                                                          if m not in _PROBE_MODELS]


def probing_layers(edge, profile: Profile | str, ncols: int = 3) -> Figure:
    """Edge-probe score per layer, one panel per task, a line per model (mean and seed spread);
    the scalar-mix probe as a dashed line."""
    tasks = list(dict.fromkeys(edge["task"]))
    nrows = -(-len(tasks) // ncols)
    fig, axes = new_figure(min(ncols, len(tasks)), nrows, width=4.0, height=3.0)
    order = _model_order(edge)
    colors = dict(zip(order, sns.color_palette(n_colors=len(order)), strict=True))
    per_layer = edge[edge["layer"].astype(str) != "mix"].assign(
        layer=lambda d: d["layer"].astype(int), score=lambda d: 100 * d["score"])
    for ax, task in zip(axes.flat, tasks, strict=False):
        sub = per_layer[per_layer["task"] == task]
        sns.lineplot(sub, x="layer", y="score", hue="model", hue_order=order, palette=colors,
                     errorbar="sd", marker="o", ax=ax, legend=ax is axes.flat[0])
        mix = edge[(edge["task"] == task) & (edge["layer"].astype(str) == "mix")]
        for model, m in mix.groupby("model"):
            ax.axhline(100 * m["score"].mean(), ls="--", lw=1, color=colors[model])
        metric = str(sub["metric"].iloc[0]) if len(sub) else ""
        ax.set(title=task, xlabel="layer (0 = embeddings)", ylabel=f"{metric} (%)")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.suptitle("Edge probes per layer (dashed: scalar mix), mean ± sd over probe seeds")
    return stamp(fig, profile)


def probing_expected_layer(mix, profile: Profile | str) -> Figure:
    """Centre of gravity sum_l l s_l of each task's scalar-mix weights, per model, beside the
    uniform-weights value L/2 (not Tenney et al.'s cumulative-probe expected layer)."""
    e = (mix.assign(lw=mix["layer"] * mix["weight"])
         .groupby(["task", "model", "seed"], as_index=False)["lw"].sum())
    fig, axes = new_figure(width=7.0, height=3.6)
    ax = axes[0, 0]
    order = _model_order(e)
    sns.pointplot(e, x="task", y="lw", hue="model", hue_order=order, errorbar="sd",
                  dodge=0.4 if len(order) > 1 else False, linestyle="none", ax=ax)
    ax.axhline(float(mix["layer"].max()) / 2, ls=":", color="0.4", label="uniform weights")
    ax.set(ylabel="centre of gravity Σ l·s_l", xlabel="task",
           title="Scalar-mix centre of gravity (dotted: uniform weights)")
    ax.set_ylim(0, int(mix["layer"].max()))
    return stamp(fig, profile)


def structural_probes(structural, profile: Profile | str) -> Figure:
    """Structural-probe metrics per layer (UUAS, DSpr., root accuracy, NSpr.), a line per model."""
    names = {"uuas": "UUAS (distance)", "dspr": "Spearman (distance)",
             "root_acc": "root accuracy (depth)", "nspr": "Spearman (depth)"}
    metrics = [m for m in names if m in set(structural["metric"])]
    fig, axes = new_figure(len(metrics), 1, width=3.6, height=3.2)
    order = _model_order(structural)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        sub = structural[structural["metric"] == metric]
        sns.lineplot(sub, x="layer", y="value", hue="model", hue_order=order, errorbar="sd",
                     marker="o", ax=ax, legend=ax is axes.flat[0])
        ax.set(title=names[metric], xlabel="layer (0 = embeddings)", ylabel=metric)
    fig.suptitle("Structural probes (Hewitt & Manning 2019) on UD EWT dev")
    return stamp(fig, profile)


def probing_selectivity(control, profile: Profile | str) -> Figure:
    """Task accuracy, control accuracy and selectivity per layer for the control tasks."""
    tasks = list(dict.fromkeys(control["task"]))
    fig, axes = new_figure(len(tasks), 2, width=4.2, height=3.0)
    order = _model_order(control)
    data = control[control["layer"].astype(str) != "mix"].assign(
        layer=lambda d: d["layer"].astype(int),
        selectivity=lambda d: 100 * d["selectivity"],
        control_score=lambda d: 100 * d["control_score"])
    for j, task in enumerate(tasks):
        sub = data[data["task"] == task]
        for i, (col, label) in enumerate((("selectivity", "selectivity (points)"),
                                          ("control_score", "control accuracy (%)"))):
            ax = axes[i, j]
            sns.lineplot(sub, x="layer", y=col, hue="model", hue_order=order, errorbar="sd",
                         marker="o", ax=ax, legend=(i == 0 and j == 0))
            ax.set(title=f"{task}: {label.split(' (')[0]}", xlabel="layer (0 = embeddings)",
                   ylabel=label)
    fig.suptitle("Control tasks (Hewitt & Liang 2019): selectivity = task − control accuracy")
    return stamp(fig, profile)


def freezing_curve(frame, profile: Profile | str, analogous_k: int | None = None) -> Figure:
    """Task score against the number of frozen bottom layers, one panel per task.

    ``frame``: ``bertdrift.ablations.freezing_sweep`` (columns ``task, k, seed, metric,
    score``). Line: mean over seeds; shaded: min..max over seeds; dots: individual seeds.
    ``analogous_k`` draws a dashed line at the depth matching the paper's 8 of 12 layers.
    """
    tasks = list(dict.fromkeys(frame["task"]))
    fig, axes = new_figure(ncols=len(tasks), width=3.9)
    for i, (ax, task) in enumerate(zip(axes[0], tasks, strict=True)):
        g = frame[frame["task"] == task]
        stats = g.groupby("k")["score"].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], marker="o", color=f"C{i}")
        ax.fill_between(stats.index, stats["min"], stats["max"], color=f"C{i}", alpha=0.25)
        ax.scatter(g["k"], g["score"], s=10, color="0.3", zorder=3)
        if analogous_k is not None:
            ax.axvline(analogous_k, ls="--", color="0.5", lw=1)
        ax.set(title=task, xlabel="frozen layers k (+ embeddings)",
               ylabel=str(g["metric"].iloc[0]).replace("_", " "))
        ax.set_xticks(sorted(g["k"].unique()))
    n_seeds = int(frame["seed"].nunique())
    return stamp(fig, profile, f"{n_seeds} seed(s); band = seed min..max")


def replacement_curve(frame, profile: Profile | str, tolerance: float = 1.0) -> Figure:
    """Score of a fine-tuned model with its top / bottom ``j`` layers reverted to pre-trained,
    one panel per task; the band marks ``tolerance`` points below the unreverted score."""
    tasks = list(dict.fromkeys(frame["task"]))
    fig, axes = new_figure(ncols=len(tasks), width=3.9)
    for ax, task in zip(axes[0], tasks, strict=True):
        g = frame[frame["task"] == task]
        for color, side in (("C0", "top"), ("C3", "bottom")):
            s = g[g["side"] == side].groupby("j")["score"].agg(["mean", "min", "max"])
            ax.plot(s.index, s["mean"], marker="o", color=color, label=f"revert {side} j")
            if g["seed"].nunique() > 1:
                ax.fill_between(s.index, s["min"], s["max"], color=color, alpha=0.2)
        base = float(g[g["j"] == 0]["score"].mean())
        ax.axhspan(base - tolerance, base, color="0.85", zorder=0)
        ax.set(title=task, xlabel="layers reverted to pre-trained (j)",
               ylabel=str(g["metric"].iloc[0]).replace("_", " "))
        ax.set_xticks(sorted(g["j"].unique()))
    axes[0][0].legend(fontsize=8)
    return stamp(fig, profile, f"grey band: within {tolerance:g} point of the fine-tuned model")


def probing_floors(vt, profile: Profile | str, ncols: int = 4) -> Figure:
    """Per task (its main metric): every model's score with its 95 % interval, beside the best
    trivial baseline (dashed) and the random-encoder floor; tasks at floor are titled so."""
    main = vt[vt["metric"] != "tenney_f1"].reset_index(drop=True)
    models = [m for m in ("random", *MODELS) if m in main.columns]
    nrows = -(-len(main) // ncols)
    fig, axes = new_figure(min(ncols, len(main)), nrows, width=3.1, height=2.6)
    colors = dict(zip(models, sns.color_palette(n_colors=len(models)), strict=True))
    for ax, row in zip(axes.flat, main.itertuples(), strict=False):
        r = row._asdict()
        for x, m in enumerate(models):
            lo, hi = r[f"{m}_lo"], r[f"{m}_hi"]
            ax.errorbar([x], [r[m]], yerr=[[r[m] - lo], [hi - r[m]]], fmt="o",
                        color=colors[m], capsize=3)
        ax.axhline(r["baseline"], ls="--", color="0.3", lw=1)
        ax.set_xticks(range(len(models)), models, rotation=45, fontsize=8)
        flag = "informative" if r["informative"] else "AT FLOOR"
        ax.set_title(f"{r['task']} ({r['metric']}): {flag}", fontsize=9)
        ax.set_ylabel("score (%)", fontsize=8)
    for ax in list(axes.flat)[len(main):]:
        ax.set_visible(False)
    fig.suptitle("Scores with 95 % intervals; dashed: best trivial baseline")
    return stamp(fig, profile)
