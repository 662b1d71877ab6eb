from __future__ import annotations

import pytest

from bertdrift import claims
from bertdrift.config import CLAIM_MARGINS, COMPETENCE_FLOORS, get_profile
from bertdrift.errors import ConfigError

LEARNED = {"mnli": {"scores": [66.0, 67.0, 65.0], "baseline": 35.4},
           "squad": {"scores": [58.0, 57.0, 59.0], "baseline": 11.2},
           "parsing": {"scores": [81.0, 80.0, 82.0], "baseline": 20.0}}


def _part(values, se=0.0, null=0.0, side="above", models=("mnli",), **kw):
    return {"values": list(values), "se": se, "null": null, "side": side,
            "models": list(models), **kw}


def _claim(key: str) -> claims.Claim:
    return next(c for c in claims.CLAIMS if c.key == key)


def _record_competence(p, comp=LEARNED):
    claims.record(p, claims.COMPETENCE_CHAPTER, {"competence": comp})


def test_record_and_table_round_trip(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    table = claims.claims_table(p)
    assert (table["verdict"] == "—").all()
    _record_competence(p)
    claims.record(p, "04_rsa", {
        "top_layers": {"parts": {"mnli": _part([0.10, 0.12, 0.11], 0.005),
                                 "parsing": _part([0.20, 0.22, 0.21], 0.005,
                                                  models=["parsing"])}},
        "parsing_deeper": {"parts": {"parsing − mnli": _part([0.05, 0.06, 0.04], 0.002,
                                                             models=["parsing", "mnli"])}}})
    table = claims.claims_table(p).set_index("chapter")
    assert list(table.loc["04_rsa", "verdict"]) == ["agree", "agree"]
    row = table.loc["04_rsa"].iloc[0]
    assert row["null"].startswith("0") and "[" in row["interval"] and row["rule"] != "—"
    assert row["margin"].startswith(f"± {CLAIM_MARGINS['top_layers'].value:g}")
    assert "MultiNLI" in row["caveat"]  # the packaged MiniLM saw MNLI: flagged
    assert len(row["parts"]) == 2 and row["parts"][0]["verdict"] == "agree"
    other = get_profile("tiny", cache_dir=str(tmp_path), model="another/model")
    assert (claims.claims_table(other)["verdict"] == "—").all()


def test_the_competence_gate_says_who_fell_short_and_by_how_much():
    rec = {"top_layers": {"parts": {"mnli": _part([0.10, 0.12, 0.11], 0.005),
                                    "squad": _part([0.10, 0.12, 0.11], 0.005,
                                                   models=["squad"])}}}
    j = claims.judge(_claim("top_layers"), rec, LEARNED)
    assert j.verdict == "agree"
    tiny = dict(LEARNED, mnli={"scores": [44.0, 45.0, 43.6], "baseline": 35.4},
                squad={"scores": [9.5, 18.0, 18.7], "baseline": 11.2})
    j = claims.judge(_claim("top_layers"), rec, tiny)
    assert j.verdict == "not judged"
    floor = COMPETENCE_FLOORS["mnli"].value
    assert f"mnli: seed mean 44.2 below the floor {floor:g}" in j.why
    assert f"short by {floor - 44.2:.1f}" in j.why
    assert "squad: seed score(s) 9.5 not above the trivial baseline 11.2" in j.why
    assert "the parts alone would read: agree" in j.why and j.parts  # parts still shown
    # a claim resting only on parsing is judged when parsing learned
    only = {"top_layers": {"parts": {"parsing": _part([0.1, 0.12, 0.11], models=["parsing"])}}}
    assert claims.judge(_claim("top_layers"), only, tiny).verdict == "agree"
    # without chapter 2's record nothing is judged
    assert claims.judge(_claim("top_layers"), only, None).verdict == "not judged"


def test_rules_on_synthetic_inputs_with_known_answers():
    c = _claim("top_layers")
    clear = {"top_layers": {"parts": {"mnli": _part([0.10, 0.11, 0.12], 0.01),
                                      "squad": _part([0.20, 0.21, 0.19], 0.01,
                                                     models=["squad"])}}}
    assert claims.judge(c, clear, LEARNED).verdict == "agree"
    noisy = {"top_layers": {"parts": {"mnli": _part([0.3, -0.2, 0.1], 0.01)}}}
    assert claims.judge(c, noisy, LEARNED).verdict == "inconclusive"
    mixed = {"top_layers": {"parts": {"mnli": _part([0.10, 0.11, 0.12]),
                                      "squad": _part([-0.2, -0.21, -0.19], models=["squad"])}}}
    j = claims.judge(c, mixed, LEARNED)
    assert j.verdict == "disagree" and "1 disagree" in j.why
    assert j.effect.startswith("squad: ")  # the weakest part leads the summary
    flat = {"top_layers": {"parts": {"mnli": _part([0.001, -0.001, 0.0, 0.0005, -0.0005])}}}
    assert claims.judge(c, flat, LEARNED).verdict == "equivalent"
    # one seed, no spread measured elsewhere: the claim cannot be estimated, so not judged
    one = {"top_layers": {"parts": {"mnli": _part([0.1], se=0.01)}}}
    j = claims.judge(c, one, LEARNED)
    assert j.verdict == "not judged" and "at least 2 seeds" in j.why


def test_absence_claims_read_equivalent_as_agreement():
    # forgetting: every change inside ± a quarter of the margin -> the paper's claim holds
    m = 8.0
    rec = {"forgetting": {"parts": {
        f"pos · {t} · mix": _part([0.1, -0.2, 0.05], se=0.3, null=-m, margin=m,
                                  absence=True, models=[t])
        for t in ("mnli", "squad", "parsing")}}}
    j = claims.judge(_claim("forgetting"), rec, LEARNED)
    assert j.verdict == "agree" and "3 agree of 3 parts" in j.why
    assert all(p["verdict"] == "equivalent" and p["reading"] == "agree" for p in j.parts)
    lost = {"forgetting": {"parts": {"pos · mnli · mix": _part(
        [-12.0, -11.0, -13.0], se=0.3, null=-m, margin=m, absence=True)}}}
    assert claims.judge(_claim("forgetting"), lost, LEARNED).verdict == "disagree"


def test_records_with_other_settings_are_refused(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    _record_competence(p)
    bigger = get_profile("tiny", cache_dir=str(tmp_path), probe_train_size=1000)
    claims.record(bigger, "03_probing", {"forgetting": {"parts": {}}})
    assert claims.settings_fingerprint(p) != claims.settings_fingerprint(bigger)
    with pytest.raises(ConfigError, match="re-run 03_probing"):
        claims.claims_table(p)
    # where the data and the cache live is not a setting: another data folder agrees
    elsewhere = get_profile("tiny", cache_dir=str(tmp_path), data_dir=str(tmp_path / "d"))
    assert claims.settings_fingerprint(elsewhere) == claims.settings_fingerprint(p)


def test_claims_html_leads_with_a_summary_and_folds_the_rest(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    _record_competence(p)
    claims.record(p, "06_out_of_domain", {"out_of_domain": {"parts": {
        "squad <b>": _part([0.05, 0.06, 0.055], se=0.005, models=["squad"])},
        "view": {"title": "the other tasks' data", "parts": {
            "squad vs mnli data": _part([0.01, -0.01, 0.0], se=0.005, models=["squad"])}}}})
    table = claims.claims_table(p)
    out = claims.claims_html(table)
    assert "Second view</b> (the other tasks&#x27; data" in out and "squad vs mnli data" in out
    assert out.startswith('<table class="claims-table">')
    head = out.split("</thead>")[0]
    assert head.count("<th>") == 4  # claim, chapter, verdict, effect: readable at a glance
    assert '<a href="06_out_of_domain.html">06_out_of_domain</a>' in out
    assert "squad &lt;b&gt;" in out and "<b>rule</b>" in out
    assert out.count("<details") == len(claims.CLAIMS)
    assert '<span class="verdict">agree</span>' in out


def test_summary_counts_and_caveats(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    _record_competence(p)
    claims.record(p, "06_out_of_domain", {"out_of_domain": {"parts": {
        "squad": _part([0.005, -0.01, 0.02], se=0.02, models=["squad"])}}})
    table = claims.claims_table(p)
    line = claims.verdict_summary(table)["claims_summary"]
    assert "out_of_domain: inconclusive (squad: [" in line
    counts = claims.verdict_counts(table)
    assert counts["claims_inconclusive"] == 1 and counts["claims_not_judged"] == 0
    assert counts["claims_total"] == len(claims.CLAIMS)
    notes = claims.data_caveat(p)
    assert "MultiNLI" in notes["claims_history"] and "pairs" in notes["claims_data"]
    assert "MultiNLI" not in claims.data_caveat(get_profile("tiny", model="x/y"))[
        "claims_history"]


def test_record_and_judge_glues_every_field(tmp_path):
    p = get_profile("tiny", cache_dir=str(tmp_path))
    _record_competence(p)
    rec = {"out_of_domain": {"parts": {"mnli": _part([0.05, 0.06, 0.055], se=0.005)}}}
    out = claims.record_and_judge(p, "06_out_of_domain", rec)
    assert out["ood_verdict"] == "agree"
    assert set(out) == {f"ood_{k}" for k in ("ours", "verdict", "why", "effect", "interval",
                                             "null", "margin", "rule")}
    assert claims.load(p, "06_out_of_domain") == rec
