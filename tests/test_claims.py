from __future__ import annotations

import pandas as pd
import pytest

from bertdrift import claims
from bertdrift.config import get_profile
from bertdrift.errors import BertdriftError


def _part(values, se=0.0, null=0.0, side="above", **kw):
    return {"values": list(values), "se": se, "null": null, "side": side, **kw}


def test_record_and_table_round_trip(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    table = claims.claims_table(p)
    assert (table["verdict"] == "—").all()
    claims.record(p, "04_rsa", {
        "top_layers": {"parts": {"mnli": _part([0.10, 0.12, 0.11], 0.005),
                                 "parsing": _part([0.20, 0.22, 0.21], 0.005)}},
        "parsing_deeper": {"parts": {"parsing − mnli": _part([0.05, 0.06, 0.04], 0.002)}}})
    table = claims.claims_table(p).set_index("chapter")
    assert list(table.loc["04_rsa", "verdict"]) == ["agree", "agree"]
    row = table.loc["04_rsa"].iloc[0]
    assert row["null"].startswith("0") and "[" in row["interval"] and row["rule"] != "—"
    assert "MultiNLI" in row["caveat"]  # the packaged MiniLM saw MNLI: flagged
    other = get_profile("tiny", cache_dir=str(tmp_path), model="another/model")
    assert (claims.claims_table(other)["verdict"] == "—").all()


def test_interval_evidence_combines_seeds_and_words():
    # three seeds 1, 2, 3: mean 2, sd 1, seed se 1/sqrt(3); t(2) = 4.303
    e = claims.interval_evidence(_part([1.0, 2.0, 3.0]))
    assert e.effect == pytest.approx(2.0)
    assert e.high - e.effect == pytest.approx(4.3027 / 3 ** 0.5, rel=1e-3)
    # a word error adds in quadrature
    e2 = claims.interval_evidence(_part([1.0, 2.0, 3.0], se=1.0))
    assert e2.high - e2.effect == pytest.approx(4.3027 * (1 / 3 + 1) ** 0.5, rel=1e-3)
    # one seed: the normal quantile on the given se, or t with the stated dof
    e3 = claims.interval_evidence(_part([5.0], se=1.0))
    assert e3.high == pytest.approx(5 + 1.96, abs=1e-2)
    e4 = claims.interval_evidence(_part([5.0], se=1.0, dof=2))
    assert e4.high == pytest.approx(5 + 4.303, abs=1e-2)
    with pytest.raises(BertdriftError):
        claims.interval_evidence(_part([]))


def test_rules_on_synthetic_inputs_with_known_answers():
    clear = {"parts": {"mnli": _part([0.10, 0.11, 0.12], 0.01),
                       "squad": _part([0.20, 0.21, 0.19], 0.01)}}
    assert claims.judge_top_layers(clear).verdict == "agree"
    # a large seed spread around a positive mean: the interval contains 0
    noisy = {"parts": {"mnli": _part([0.3, -0.2, 0.1], 0.01)}}
    assert claims.judge_top_layers(noisy).verdict == "inconclusive"
    # no seeds' spread but a big word error: inconclusive too
    assert claims.judge_top_layers({"parts": {"mnli": _part([0.02], 0.05)}}).verdict == (
        "inconclusive")
    # one task clearly the other way: the conjunction fails
    mixed = {"parts": {"mnli": _part([0.10, 0.11, 0.12]), "squad": _part([-0.2, -0.21, -0.19])}}
    j = claims.judge_top_layers(mixed)
    assert j.verdict == "disagree" and "1 on the other side" in j.why
    assert claims.judge_parsing_deeper(
        {"parts": {"parsing − mnli": _part([-0.05, -0.06, -0.04])}}).verdict == "disagree"
    assert claims.judge_out_of_domain(
        {"parts": {"squad": _part([0.005], se=0.02, dof=2)}}).verdict == "inconclusive"
    assert claims.judge_out_of_domain(
        {"parts": {"squad": _part([0.05], se=0.005, dof=2)}}).verdict == "agree"


def test_freezing_rule_uses_the_seed_spread_and_the_baseline():
    # the review's case: MNLI drops 5.2 points with a seed sd of about 3.5: inconclusive
    drop = {"mnli drop": _part([5.2], se=3.5 * (1 / 3 + 1) ** 0.5, dof=2, null=2.0,
                               side="below"),
            "parsing − mnli": _part([16.7], se=5.0, dof=2)}
    assert claims.judge_freezing({"parts": drop}).verdict == "inconclusive"
    small = {"mnli drop": _part([0.1], se=0.3, dof=2, null=2.0, side="below"),
             "parsing − mnli": _part([10.0], se=1.0, dof=2)}
    assert claims.judge_freezing({"parts": small}).verdict == "agree"
    big = {"mnli drop": _part([9.0], se=0.5, dof=2, null=2.0, side="below")}
    assert claims.judge_freezing({"parts": big}).verdict == "disagree"
    j = claims.judge_freezing({"parts": small, "weak": ["mnli"]})
    assert j.verdict == "inconclusive" and "mnli" in j.why


def test_claims_html_escapes_and_links():
    table = pd.DataFrame([{"claim": "a < b", "chapter": "04_rsa", "effect": "x: 1; y: 2",
                           "verdict": "agree", "why": "because"}])
    out = claims.claims_html(table)
    assert "a &lt; b" in out and '<a href="04_rsa.html">04_rsa</a>' in out
    assert "x: 1<br>y: 2" in out and out.count("<tr>") == 2
    assert '<td data-label="verdict">agree</td>' in out


def test_decide_is_an_interval_rule_with_an_honest_middle():
    E = claims.Evidence
    assert claims.decide(E(0.3, 0.1, 0.5, null=0.0)) == "agree"
    assert claims.decide(E(-0.3, -0.5, -0.1, null=0.0)) == "disagree"
    assert claims.decide(E(0.3, -0.1, 0.7, null=0.0)) == "inconclusive"  # contains the null
    assert claims.decide(E(0.0, 0.0, 0.2, null=0.0)) == "inconclusive"   # touches it
    assert claims.decide(E(2.0, 1.0, 3.0, null=5.0, side="below")) == "agree"
    assert claims.decide(E(6.0, 5.5, 7.0, null=5.0, side="below")) == "disagree"
    with pytest.raises(BertdriftError):
        E(0.0, 1.0, -1.0, null=0.0)
    with pytest.raises(BertdriftError):
        E(0.0, -1.0, 1.0, null=0.0, side="left")


def test_summary_and_caveats_for_the_closing_note(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    claims.record(p, "06_out_of_domain", {"parts": {"squad": _part([0.005], 0.02, dof=2)}})
    table = claims.claims_table(p)
    line = claims.verdict_summary(table)["claims_summary"]
    assert "06_out_of_domain: inconclusive (effect and 95 % interval: squad: [" in line
    notes = claims.data_caveat(p)
    assert "MultiNLI" in notes["claims_history"] and "pairs" in notes["claims_data"]
    assert "MultiNLI" not in claims.data_caveat(get_profile("tiny", model="x/y"))[
        "claims_history"]
def _forget(margins: dict[str, list[float]], changes: dict[str, dict[str, list[float]]]):
    return {"tasks": {t: {"margin": m, "change": {mod: c[t] for mod, c in changes.items()}}
                      for t, m in margins.items()}}


def test_judge_forgetting_rests_on_informative_tasks_only():
    margins = {"pos": [30.0, 28.0, 32.0], "coref": [-8.0, -10.0, -6.0]}
    # pos keeps its score; coref (at floor) "loses" 20 points, which must not count
    ok = _forget(margins, {"mnli": {"pos": [-1.0, -2.0, 0.0], "coref": [-20.0, -25.0, -15.0]}})
    j = claims.judge_forgetting(ok)
    assert j.verdict == "agree" and "rests on 1 informative of 2 tasks" in j.why
    assert "coref" in j.why.split("left out:")[1] and "worst change -1.0 points (pos)" in j.ours
    # the page's columns: the change reaching lowest per model, its interval, the null, the rule
    assert j.effect == "mnli: -1.0 (pos)" and j.interval == "mnli: [-2.0, +0.0] (pos)"
    assert j.null.startswith("-5 points") and "informative" in j.rule
    lost = _forget(margins, {"mnli": {"pos": [-9.0, -11.0, -7.0], "coref": [0.0, -1.0, 1.0]}})
    j = claims.judge_forgetting(lost)
    assert j.verdict == "disagree" and "pos after mnli" in j.why
    wide = _forget(margins, {"mnli": {"pos": [-3.0, -8.0, 2.0], "coref": [0.0, -1.0, 1.0]}})
    assert claims.judge_forgetting(wide).verdict == "inconclusive"
    # a margin whose interval touches zero is not informative: nothing left to judge
    floor = _forget({"pos": [2.0, -0.5, 4.5]}, {"mnli": {"pos": [-9.0, -11.0, -7.0]}})
    j = claims.judge_forgetting(floor)
    assert j.verdict == "inconclusive" and "rests on 0 of 1 tasks" in j.why
    # the stated tolerance is the null: a looser one accepts the 9-point drop, a stricter one
    # leaves the 1-point drop's interval [-2, 0] undecided
    assert claims.judge_forgetting(dict(lost, tolerance=12.0)).verdict == "agree"
    assert claims.judge_forgetting(dict(ok, tolerance=0.5)).verdict == "inconclusive"
    assert claims.judge_forgetting({"change": {"mnli": {"pos": -1.0}}}).verdict == (
        "inconclusive")
    # informative tasks but no fine-tuned model: nothing was judged, so no vacuous "agree"
    assert claims.judge_forgetting(_forget(margins, {})).verdict == "inconclusive"
