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

from bertdrift.config import Profile  # noqa: E402

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

