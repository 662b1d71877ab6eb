"""Tables for the book: compact, styled, in the book's category order, never wider than the page.

Use in a notebook (the last expression of a cell is displayed)::

    from bertdrift import tables
    tables.style(frame, caption="Fine-tuned scores (%)")          # any result table
    tables.profile_summary(profile)                                # 5–8 rows: what ran
    tables.profile_settings(profile)                               # every setting, to fold

Fold the full settings with a cell tagged ``hide-output`` (Jupyter Book shows a "Show output"
button) or put them in a ``{dropdown}``. Split a wide table into several narrow ones::

    for part in tables.split_wide(wide, max_cols=6):
        display(tables.style(part))

or transpose it (``tables.style(wide.T)``) when it has more columns than rows. ``style``
returns a pandas ``Styler`` with the CSS class ``bertdrift-table``; ``book/_static/custom.css``
makes such tables scroll inside their own box instead of running off a narrow page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bertdrift.config import DOMAINS, EDGE_TASKS, MODELS, TASKS, Profile, model_label
from bertdrift.errors import ConfigError

CATEGORY_ORDER: dict[str, tuple[str, ...]] = {
    "task": (*TASKS, *EDGE_TASKS),
    "model": (*MODELS, "random"),
    "domain": DOMAINS,
    "edge_task": EDGE_TASKS,
}
"""The order rows are sorted in when a table has one of these columns or index levels (the same
order as the figures': ``bertdrift.plots.ORDER``)."""

SIMILARITY_WORDS = ("rsa", "cka", "procrustes", "cos", "similarity", "anisotropy", "corr",
                    "spearman", "pearson", "weight", "selectivity_frac")
"""Columns whose name contains one of these hold similarities in [-1, 1]: 3 decimals."""


def _decimals_for(name: str, values: pd.Series, decimals: int | None) -> int:
    if decimals is not None:
        return decimals
    lname = str(name).lower()
    if any(w in lname for w in SIMILARITY_WORDS):
        return 3
    finite = values[np.isfinite(values.astype(float))]
    if len(finite) and float(finite.abs().max()) <= 1.0 + 1e-6:  # a similarity may be 1 + eps
        return 3
    return 1


def _is_integral(values: pd.Series) -> bool:
    v = values.dropna()
    if v.empty:
        return False
    if pd.api.types.is_integer_dtype(v) or pd.api.types.is_bool_dtype(v):
        return True
    if not pd.api.types.is_float_dtype(v):
        return False
    return bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)) and v.abs().max() < 1e15)


def sort_categories(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by the book's order of tasks / models / domains wherever a column or index
    level carries them, and columns wherever a column level is named ``task``, ``model``,
    ``domain`` or ``edge_task`` (as ``pivot_table(columns="task")`` names it). Stable: other rows
    and columns keep their order; unknown names go last."""
    out = _sort_columns(df)
    keys: list[str] = []
    for name in ("task", "model", "domain", "edge_task"):
        if name in out.columns or name in (out.index.names or []):
            keys.append(name)
    if not keys:
        return out

    def rank(values: pd.Index | pd.Series, name: str) -> pd.Index | pd.Series:
        ref = {v: i for i, v in enumerate(CATEGORY_ORDER[name])}
        return values.map(lambda v: ref.get(str(v), len(ref)))

    by_cols = [k for k in keys if k in out.columns]
    by_levels = [k for k in keys if k not in by_cols]
    if by_levels:
        out = out.sort_index(level=by_levels, key=lambda idx: rank(idx, idx.name),
                             sort_remaining=False, kind="stable")
    if by_cols:
        out = out.sort_values(by_cols, key=lambda col: rank(col, str(col.name)), kind="stable")
    return out


def _sort_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its columns in the book's order on every column level named after a category
    (other levels keep the order in which their values first appear)."""
    names = list(df.columns.names)
    if not any(n in CATEGORY_ORDER for n in names):
        return df
    seen: list[dict[Any, int]] = [{} for _ in names]
    for col in df.columns:
        for i, v in enumerate(col if isinstance(col, tuple) else (col,)):
            seen[i].setdefault(v, len(seen[i]))

    def key(pos: int) -> tuple[int, ...]:
        col = df.columns[pos]
        parts = col if isinstance(col, tuple) else (col,)
        out = []
        for i, v in enumerate(parts):
            ref = CATEGORY_ORDER.get(str(names[i]))
            out.append(ref.index(str(v)) if ref and str(v) in ref
                       else len(ref) if ref else seen[i][v])
        return tuple(out)

    return df.iloc[:, sorted(range(df.shape[1]), key=key)]


def compact(df: pd.DataFrame) -> pd.DataFrame:
    """Drop all-empty columns (all ``None``/NaN/"") and sort rows in the book's order."""
    empty = [c for c in df.columns
             if df[c].isna().all() or (df[c].astype(str).str.strip() == "").all()]
    return sort_categories(df.drop(columns=empty))


def style(df: pd.DataFrame | pd.Series, decimals: int | dict[str, int] | None = None,
          caption: str | None = None, hide_index: bool = False, keep_empty: bool = False,
          sort: bool = True) -> Any:
    """A compact, readable ``pandas.Styler`` of ``df``.

    - no scientific notation: similarities (columns named like ``rsa``, ``cka``, … or with all
      values in [-1, 1]) get 3 decimals, other floats 1 (``decimals`` overrides: one number, or
      ``{column: decimals}``);
    - whole numbers stored as floats (``2.0`` epochs) print as integers, with thousands
      separators; missing values print as an en dash;
    - all-empty columns are dropped (``keep_empty=True`` keeps them);
    - rows follow the book's task / model / domain order (``sort=False`` keeps yours);
    - the table has the CSS class ``bertdrift-table`` (compact, scrolls in its own box).

    Example: ``tables.style(frame, caption="RSA at the top layer")``.
    """
    frame = df.to_frame() if isinstance(df, pd.Series) else df.copy()
    if not keep_empty:
        frame = frame.drop(columns=[c for c in frame.columns if frame[c].isna().all()
                                    or (frame[c].astype(str).str.strip() == "").all()])
    if sort:
        frame = sort_categories(frame)
    formats: dict[Any, Any] = {}
    for col in frame.columns:
        values = frame[col]
        if isinstance(values, pd.DataFrame):  # duplicate column names: leave as they are
            continue
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue  # text, mixed or boolean column: shown as it is
        numeric = values.astype(float)
        if _is_integral(numeric):
            formats[col] = "{:,.0f}"
            continue
        if not (pd.api.types.is_float_dtype(numeric) or pd.api.types.is_integer_dtype(numeric)):
            continue
        n = (decimals.get(str(col)) if isinstance(decimals, dict) else None)
        n = n if n is not None else _decimals_for(
            str(col), numeric, decimals if isinstance(decimals, int) else None)
        formats[col] = f"{{:,.{n}f}}"
    styler = frame.style.format(formats, na_rep="–")
    text_cols = [c for c in frame.columns if c not in formats]
    if text_cols:  # text reads left-aligned and may wrap; numbers stay right-aligned on one line
        styler = styler.set_properties(subset=text_cols, **{"text-align": "left",
                                                            "white-space": "normal"})
    styler = styler.format_index(_fmt_index, axis=0).format_index(_fmt_index, axis=1)
    styler = styler.set_table_attributes('class="bertdrift-table"')
    if caption:
        styler = styler.set_caption(caption)
    if hide_index:
        styler = styler.hide(axis="index")
    return styler


def _fmt_index(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value)


def split_wide(df: pd.DataFrame, max_cols: int = 6) -> list[pd.DataFrame]:
    """Split ``df`` into consecutive column blocks of at most ``max_cols`` columns (each keeps
    the index), so each fits the page; concatenating them along columns gives ``df`` back."""
    if max_cols < 1:
        raise ValueError("max_cols must be at least 1")
    return [df.iloc[:, i:i + max_cols] for i in range(0, max(df.shape[1], 1), max_cols)]


def transpose_if_wide(df: pd.DataFrame, max_cols: int = 8) -> pd.DataFrame:
    """``df.T`` when it has more than ``max_cols`` columns and fewer rows than columns."""
    return df.T if df.shape[1] > max_cols and df.shape[0] < df.shape[1] else df


def _sizes(values: Iterable[Any]) -> str:
    return ", ".join("all" if v is None else f"{v:,}" for v in values)


def profile_summary(profile: Profile) -> pd.DataFrame:
    """Seven rows that say what ran: profile, model, device, seeds, fine-tuning sizes and epochs,
    probing sizes, similarity sizes. Show with ``tables.style(tables.profile_summary(p))``;
    fold ``profile_settings(p)`` for everything else."""
    from bertdrift.config import resolve_device

    recipes = {t: profile.recipe(t) for t in TASKS}
    rows = {
        "profile": profile.name,
        "model": model_label(profile.model),
        "device": resolve_device(profile.device),
        "fine-tuning seeds": ", ".join(str(s) for s in profile.seeds),
        "fine-tuning (train examples; epochs)": "; ".join(
            f"{t} {_sizes([r.train_size])} × {r.epochs}" for t, r in recipes.items()),
        "probing (train / eval sentences; seeds)": (
            f"{_sizes([profile.probe_train_size])} / {_sizes([profile.probe_eval_size])}; "
            f"{len(profile.probe_seeds)} probe seeds"),
        "similarity (tokens; bootstrap; OOD sentences)": (
            f"{profile.rsa_tokens:,}; {profile.rsa_bootstrap:,}; {profile.ood_sentences:,}"),
    }
    return pd.Series(rows, name="value").to_frame()


def profile_settings(profile: Profile) -> pd.DataFrame:
    """Every setting of ``profile``, one row each (task recipes as ``task.field``), values as
    text: for a folded cell, next to ``profile_summary``."""
    rows: dict[str, str] = {}
    for f in dataclasses.fields(profile):
        value = getattr(profile, f.name)
        if dataclasses.is_dataclass(value):
            for g in dataclasses.fields(value):
                rows[f"{f.name}.{g.name}"] = _text(getattr(value, g.name))
        else:
            rows[f.name] = _text(value)
    return pd.Series(rows, name="value").to_frame()


LEAVES_OUT = {
    "02": ("seeds", "mnli.train_size", "mnli.epochs", "squad.train_size", "squad.epochs",
           "parsing.train_size", "parsing.epochs", "mnli.eval_size", "squad.eval_size",
           "parsing.eval_size"),
    "03": ("seeds", "probe_train_size", "probe_eval_size", "probe_seeds", "probe_hidden",
           "probe_epochs", "structural_rank"),
    "04": ("seeds", "rsa_tokens", "rsa_bootstrap"),
    "05": ("ablation_ks", "ablation_seeds", "ablation_judged_seeds", "ablation_eval_size"),
    "06": ("seeds", "ood_sentences", "rsa_bootstrap"),
    "07": ("seeds", "snapshot_fractions", "dynamics_probe_train_size", "dynamics_eval_size"),
}
"""The settings each chapter's results depend on most, for ``leaves_out``."""


def leaves_out(profile: Profile, chapter: str, against: str = "paper") -> str:
    """A Markdown list of the settings of ``LEAVES_OUT[chapter]`` in which ``profile`` differs
    from the ``against`` profile, with both values (``all``: the whole split, every depth, every
    seed); ``""`` when it differs in none (e.g. ``profile`` is ``against``)::

        leaves_out(get_profile("tiny"), "04")
        # '**What the `tiny` profile leaves out** ...:\n\n- `seeds`: 0, 1 (paper: 0, 1, 2)\n...'
    """
    from bertdrift.config import get_profile

    if chapter not in LEAVES_OUT:
        raise ConfigError(f"chapter={chapter!r} is not one of {sorted(LEAVES_OUT)}")
    ref = get_profile(against)
    flat, flat_ref = (profile_settings(p)["value"].replace("–", "all") for p in (profile, ref))
    lines = [f"- `{name}`: {flat[name]} ({against}: {flat_ref[name]})"
             for name in LEAVES_OUT[chapter] if flat[name] != flat_ref[name]]
    if not lines:
        return ""
    return (f"**What the `{profile.name}` profile leaves out** in this chapter, against the "
            f"`{against}` profile:\n\n" + "\n".join(lines))


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(_text(v) for v in value) or "–"
    return str(value)
