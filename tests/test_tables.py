"""bertdrift.tables: compact styled tables in the book's order, profile summary, wide splits."""

from __future__ import annotations

import pandas as pd
import pytest

from bertdrift import tables
from bertdrift.config import get_profile


def _html(df, **kw) -> str:
    return tables.style(df, **kw).to_html()


def test_similarities_have_fixed_decimals_and_no_scientific_notation():
    df = pd.DataFrame({"task": ["mnli"], "rsa": [0.000174], "cka_debiased": [0.17412]})
    html = _html(df)
    assert "e-0" not in html and "0.000" in html and "0.174" in html


def test_similarities_a_rounding_error_above_one_keep_three_decimals():
    by_layer = pd.DataFrame({1: [1.0000001, 0.9987], 2: [0.9996, 0.4123]})  # pivoted, no name
    html = _html(by_layer)
    assert "0.999" in html and "0.412" in html and ">1.000<" in html


def test_whole_floats_print_as_integers_and_empty_columns_go():
    df = pd.DataFrame({"task": ["squad", "mnli"], "epochs": [2.0, 3.0], "seed_sd": [None, None],
                       "score": [80.25, 70.5], "n": [12000.0, 300.0]})
    html = _html(df)
    assert "2.0" not in html and ">2<" in html and "12,000" in html
    assert "seed_sd" not in html
    assert "80.2" in html or "80.3" in html
    assert "bertdrift-table" in html


def test_rows_follow_the_book_order():
    df = pd.DataFrame({"task": ["parsing", "squad", "mnli", "other"], "x": [1, 2, 3, 4]})
    assert list(tables.sort_categories(df)["task"]) == ["mnli", "squad", "parsing", "other"]
    idx = pd.MultiIndex.from_product([["squad", "mnli"], ["pretrained", "parsing"]],
                                     names=["task", "model"])
    out = tables.sort_categories(pd.DataFrame({"x": range(4)}, index=idx))
    assert list(out.index) == [("mnli", "pretrained"), ("mnli", "parsing"),
                               ("squad", "pretrained"), ("squad", "parsing")]


def test_task_columns_follow_the_book_order():
    wide = pd.DataFrame([[1, 2, 3]], columns=pd.Index(["parsing", "mnli", "squad"], name="task"))
    assert list(tables.sort_categories(wide).columns) == ["mnli", "squad", "parsing"]
    cols = pd.MultiIndex.from_tuples([("mean", "squad"), ("mean", "mnli"), ("std", "other"),
                                      ("std", "squad"), ("std", "mnli")], names=[None, "task"])
    out = tables.sort_categories(pd.DataFrame([range(5)], columns=cols))
    assert list(out.columns) == [("mean", "mnli"), ("mean", "squad"), ("std", "mnli"),
                                 ("std", "squad"), ("std", "other")]
    assert list(out.iloc[0]) == [1, 0, 4, 3, 2]
    html = _html(pd.DataFrame([[0.5, 0.25]], columns=pd.Index(["squad", "mnli"], name="task")))
    assert html.index("mnli") < html.index("squad")
    plain = pd.DataFrame({"squad": [1], "mnli": [2]})  # unnamed columns: left as they are
    assert list(tables.sort_categories(plain).columns) == ["squad", "mnli"]


def test_text_columns_and_missing_values():
    df = pd.DataFrame({"model": ["mnli", "pretrained"], "verdict": ["agree", None],
                       "score": [1.5, None]})
    html = _html(df)
    assert "agree" in html and "–" in html
    assert html.index("pretrained") < html.index("mnli")


def test_split_wide_keeps_every_column_once():
    wide = pd.DataFrame([[i * j for j in range(12)] for i in range(21)])
    parts = tables.split_wide(wide, max_cols=5)
    assert [p.shape[1] for p in parts] == [5, 5, 2]
    pd.testing.assert_frame_equal(pd.concat(parts, axis=1), wide)
    assert tables.transpose_if_wide(wide.iloc[:3]).shape == (12, 3)
    with pytest.raises(ValueError):
        tables.split_wide(wide, 0)


def test_profile_summary_is_short_and_settings_are_complete():
    p = get_profile("tiny")
    summary = tables.profile_summary(p)
    assert 5 <= len(summary) <= 8
    assert summary.loc["profile", "value"] == "tiny"
    assert all(len(str(v)) < 120 for v in summary["value"])
    settings = tables.profile_settings(p)
    assert "mnli.lr" in settings.index and "probe_epochs" in settings.index
    assert len(settings) > 30
    assert "e-0" not in tables.style(settings).to_html() or "2e-05" in str(p.mnli.lr)


def test_multiindex_columns_and_text_columns_together():
    cols = pd.MultiIndex.from_product([["rsa", "cka"], ["mnli", "squad"]])
    df = pd.DataFrame([[0.1234567] * 4] * 3, columns=cols,
                      index=pd.Index(["parsing", "mnli", "squad"], name="task"))
    df[("note", "x")] = ["a", "b", "c"]
    html = tables.style(df).to_html()
    assert "0.123" in html and "0.1234567" not in html
    assert html.index(">mnli<") < html.index(">parsing<")


def test_leaves_out_names_what_a_profile_shrinks_against_another() -> None:
    from bertdrift import get_profile
    from bertdrift.errors import ConfigError

    tiny = get_profile("tiny")
    text = tables.leaves_out(tiny, "04")
    assert text.startswith("**What the `tiny` profile leaves out**")
    assert f"- `rsa_tokens`: {tiny.rsa_tokens} (paper: 5000)" in text
    assert "`seeds`: 0, 1 (paper: 0, 1, 2)" in text
    assert "probe_hidden" not in text  # only the chapter's own settings
    assert "(paper: all)" in tables.leaves_out(tiny, "03")  # None: the whole split
    assert tables.leaves_out(get_profile("paper"), "04") == ""
    assert tables.leaves_out(tiny, "04", against="tiny") == ""
    with pytest.raises(ConfigError, match="chapter='09'"):
        tables.leaves_out(tiny, "09")
