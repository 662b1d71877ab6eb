from __future__ import annotations

import pandas as pd
import pytest

from bertdrift import claims
from bertdrift.config import get_profile
from bertdrift.errors import BertdriftError


def test_record_and_table_round_trip(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    table = claims.claims_table(p)
    assert (table["verdict"] == "—").all()
    claims.record(p, "04_rsa", {"rsa": {"mnli": [0.99, 0.95, 0.9, 0.8, 0.7, 0.5],
                                        "squad": [0.99, 0.96, 0.9, 0.85, 0.7, 0.6],
                                        "parsing": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]}})
    table = claims.claims_table(p).set_index("chapter")
    assert list(table.loc["04_rsa", "verdict"]) == ["agree", "agree"]
    other = get_profile("tiny", cache_dir=str(tmp_path), model="another/model")
    assert (claims.claims_table(other)["verdict"] == "—").all()


def test_judges_on_hand_worked_numbers():
    assert claims.judge_top_layers({"rsa": {"mnli": [0.5, 0.6, 0.9]}})[1] == "disagree"
    assert claims.judge_parsing_deeper(
        {"rsa": {"mnli": [0.9, 0.9, 0.5], "squad": [0.8, 0.9, 0.5],
                 "parsing": [0.85, 0.9, 0.5]}})[1] == "partly"
    assert claims.judge_freezing({"drop": {"mnli": 1.0, "squad": 1.5, "parsing": 6.0}})[1] == (
        "agree")
    assert claims.judge_freezing({"drop": {"mnli": 3.0, "squad": 1.5, "parsing": 1.0}})[1] == (
        "disagree")
    at_chance = {"drop": {"mnli": 1.0, "squad": 1.5, "parsing": 6.0},
                 "k0": {"mnli": 34.0, "squad": 17.0, "parsing": 54.0},
                 "baseline": {"mnli": 32.9, "squad": 11.3, "parsing": 20.0}}
    verdict, why = claims.judge_freezing(at_chance)[1:]
    assert verdict == "inconclusive" and "mnli" in why and "squad" not in why
    at_chance["k0"]["mnli"] = 48.0
    assert claims.judge_freezing(at_chance)[1] == "agree"
    verdict, why = claims.judge_freezing({"drop": {"mnli": 5.2, "squad": 4.2, "parsing": 21.9}})[1:]
    assert verdict == "partly" and why.startswith("parsing loses the most")
    assert claims.judge_out_of_domain({"gap": {"mnli": 0.02, "squad": -0.01}})[1] == "partly"


def test_claims_html_escapes_and_links():
    table = pd.DataFrame([{"claim": "a < b", "chapter": "04_rsa", "our result": "x: 1; y: 2",
                           "verdict": "agree", "why": "because"}])
    out = claims.claims_html(table)
    assert "a &lt; b" in out and '<a href="04_rsa.html">04_rsa</a>' in out
    assert "x: 1<br>y: 2" in out and out.count("<tr>") == 2


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


def _forget(margins: dict[str, list[float]], changes: dict[str, dict[str, list[float]]]):
    return {"tasks": {t: {"margin": m, "change": {mod: c[t] for mod, c in changes.items()}}
                      for t, m in margins.items()}}


def test_judge_forgetting_rests_on_informative_tasks_only():
    margins = {"pos": [30.0, 28.0, 32.0], "coref": [-8.0, -10.0, -6.0]}
    # pos keeps its score; coref (at floor) "loses" 20 points, which must not count
    ok = _forget(margins, {"mnli": {"pos": [-1.0, -2.0, 0.0], "coref": [-20.0, -25.0, -15.0]}})
    ours, verdict, why = claims.judge_forgetting(ok)
    assert verdict == "agree" and "rests on 1 informative of 2 tasks" in why
    assert "coref" in why.split("left out:")[1] and "worst change -1.0 points (pos)" in ours
    lost = _forget(margins, {"mnli": {"pos": [-9.0, -11.0, -7.0], "coref": [0.0, -1.0, 1.0]}})
    verdict, why = claims.judge_forgetting(lost)[1:]
    assert verdict == "disagree" and "pos after mnli" in why
    wide = _forget(margins, {"mnli": {"pos": [-3.0, -8.0, 2.0], "coref": [0.0, -1.0, 1.0]}})
    assert claims.judge_forgetting(wide)[1] == "inconclusive"
    # a margin whose interval touches zero is not informative: nothing left to judge
    floor = _forget({"pos": [2.0, -0.5, 4.5]}, {"mnli": {"pos": [-9.0, -11.0, -7.0]}})
    verdict, why = claims.judge_forgetting(floor)[1:]
    assert verdict == "inconclusive" and "rests on 0 of 1 tasks" in why
    # the stated tolerance is the null: a looser one accepts the 9-point drop, a stricter one
    # leaves the 1-point drop's interval [-2, 0] undecided
    assert claims.judge_forgetting(dict(lost, tolerance=12.0))[1] == "agree"
    assert claims.judge_forgetting(dict(ok, tolerance=0.5))[1] == "inconclusive"
    assert claims.judge_forgetting({"change": {"mnli": {"pos": -1.0}}})[1] == "inconclusive"
    # informative tasks but no fine-tuned model: nothing was judged, so no vacuous "agree"
    assert claims.judge_forgetting(_forget(margins, {}))[1] == "inconclusive"
