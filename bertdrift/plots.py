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
