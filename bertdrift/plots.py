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
