"""The paper's claims beside our measured numbers.

Each chapter records its headline numbers with ``record(profile, chapter, numbers)`` (a small
JSON file per chapter and profile under ``<cache>/results/claims/``). The claims page reads them
back and judges each claim with the rule written next to it here — one place, in code, so the
verdicts are reproducible and the rules can be read and criticised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertdrift.config import Profile
from bertdrift.errors import BertdriftError
from bertdrift.io import read_json, results_dir, write_json

MIN_MARGIN = 3.0
"""Points above the trivial baseline a model must score before its changes are judged."""


VERDICTS = ("agree", "partly", "disagree", "inconclusive")


@dataclass(frozen=True)
class Evidence:
    """An effect with its interval and the null it is judged against.

    ``effect`` is the point estimate, ``[low, high]`` its 95 % interval (over examples and
    seeds), ``null`` the value the effect would take if the claim were false (a trivial
    baseline, zero change, the seed-to-seed ceiling, ...), and ``side`` says on which side of
    the null the claim puts the effect (``"above"`` or ``"below"``).
    """

    effect: float
    low: float
    high: float
    null: float
    side: str = "above"

    def __post_init__(self) -> None:
        if self.side not in ("above", "below"):
            raise BertdriftError(f"side={self.side!r}; use 'above' or 'below'")
        if not self.low <= self.high:
            raise BertdriftError(f"interval [{self.low}, {self.high}] is reversed")


def decide(ev: Evidence) -> str:
    """The interval rule every claim uses: ``agree`` when the interval lies wholly on the
    claim's side of the null (it excludes the null), ``disagree`` when it lies wholly on the
    other side (it excludes the claim), ``inconclusive`` when it contains the null."""
    above, below = ev.low > ev.null, ev.high < ev.null
    if ev.side == "below":
        above, below = below, above
    if above:
        return "agree"
    if below:
        return "disagree"
    return "inconclusive"


def claims_dir(profile: Profile) -> Path:
    return results_dir(profile.cache_path, "claims") / profile.name


def record(profile: Profile, chapter: str, numbers: dict[str, Any]) -> Path:
    """Store a chapter's headline numbers (JSON-serialisable) for the claims page."""
    payload = {"chapter": chapter, "model": profile.model, "profile": profile.name,
               "numbers": numbers}
    return write_json(claims_dir(profile) / f"{chapter}.json", payload)


def load(profile: Profile, chapter: str) -> dict[str, Any] | None:
    path = claims_dir(profile) / f"{chapter}.json"
    if not path.exists():
        return None
    payload = read_json(path)
    if payload.get("model") != profile.model:
        return None
    return dict(payload["numbers"])


@dataclass(frozen=True)
class Claim:
    key: str
    chapter: str
    paper: str
    judge: Callable[[dict[str, Any]], tuple[str, str, str]]
    """numbers -> (our result in words and numbers, verdict, why)."""
    glue: str = ""
    """Prefix of the glue names its chapter quotes the verdict under (``<glue>_verdict``)."""


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


FORGETTING_TOLERANCE = 5.0
"""Points a probing score may lose before the loss counts as forgetting. Merchant et al. (2020)
report changes of a point or two on most edge-probing tasks, within the spread of probe seeds;
losing five points is more than twice that and, for our weakest informative probes, a large part
of their margin over the floor, so a drop whose whole interval lies below -5 points is
forgetting, and one whose whole interval lies above it is not."""


def judge_forgetting(n: dict[str, Any]) -> tuple[str, str, str]:
    """No catastrophic forgetting, judged on *informative* tasks only.

    ``n["tasks"][task]`` holds ``margin`` (the pre-trained score minus the best of its
    baselines: trivial predictors and the random-encoder floor) and ``change[model]`` (the
    fine-tuned minus the pre-trained score), each ``[point, low, high]`` in points with a 95 %
    interval. A task is informative when ``decide(margin vs 0)`` agrees (its interval lies above
    the floor); the others cannot show a loss and are left out. Each (model, informative task)
    change is judged by ``decide`` against ``-tolerance`` (``FORGETTING_TOLERANCE`` unless
    ``n["tolerance"]``): agree when the interval lies above it, disagree when below. The
    verdict: ``disagree`` when any change disagrees (a task was forgotten), ``agree`` when every
    change agrees, ``inconclusive`` otherwise and when no task is informative."""
    if "tasks" not in n:
        return ("recorded in an older format", "inconclusive",
                "re-run chapter 3 to record margins and intervals")
    tol = float(n.get("tolerance", FORGETTING_TOLERANCE))
    informative = [t for t, r in n["tasks"].items()
                   if decide(Evidence(*map(float, r["margin"]), null=0.0)) == "agree"]
    floor = [t for t in n["tasks"] if t not in informative]
    if not informative:
        return ("no probing task scores above its baselines", "inconclusive",
                f"rests on 0 of {len(n['tasks'])} tasks: every probe is at its floor, so none "
                "could show forgetting")
    verdicts: dict[str, dict[str, str]] = {}
    for t in informative:
        for m, ch in n["tasks"][t]["change"].items():
            verdicts.setdefault(m, {})[t] = decide(Evidence(*map(float, ch), null=-tol))
    if not any(verdicts.values()):
        return ("no fine-tuned model was probed", "inconclusive",
                f"{len(informative)} informative tasks, but no change to judge")
    parts = []
    for m, per in verdicts.items():
        changes = {t: float(n["tasks"][t]["change"][m][0]) for t in per}
        worst = min(changes, key=changes.__getitem__)
        parts.append(f"{m}: worst change {_fmt(changes[worst], 1)} points ({worst}), "
                     f"{sum(v == 'agree' for v in per.values())} of {len(per)} tasks clearly "
                     f"within {tol:g} points")
    ours = "; ".join(parts)
    basis = (f"rests on {len(informative)} informative of {len(n['tasks'])} tasks "
             f"({', '.join(informative)}); at floor and left out: {', '.join(floor) or 'none'}")
    lost = [f"{t} after {m}" for m, per in verdicts.items() for t, v in per.items()
            if v == "disagree"]
    if lost:
        return ours, "disagree", (f"the interval of the change lies below -{tol:g} points for "
                                  f"{', '.join(lost)}; {basis}")
    if all(v == "agree" for per in verdicts.values() for v in per.values()):
        return ours, "agree", (f"every change's interval lies above -{tol:g} points; {basis}")
    return ours, "inconclusive", (f"some changes' intervals reach below -{tol:g} points; "
                                  f"{basis}")


def _depth_profile(sim: dict[str, list[float]]) -> dict[str, np.ndarray]:
    return {t: np.asarray(v, dtype=float) for t, v in sim.items()}


def judge_top_layers(n: dict[str, Any]) -> tuple[str, str, str]:
    # n["rsa"][task] = similarity (pre vs fine-tuned) at layers 1..L, on the task's own data
    sims = _depth_profile(n["rsa"])
    parts, ok = [], 0
    for task, s in sims.items():
        third = max(1, len(s) // 3)
        low, high = float(s[:third].mean()), float(s[-third:].mean())
        parts.append(f"{task}: bottom third {_fmt(low)}, top third {_fmt(high)}")
        ok += int(high < low)
    ours = "; ".join(parts)
    if ok == len(sims):
        return ours, "agree", "for every task the top layers are the least similar to pre-trained"
    if ok:
        return ours, "partly", f"true for {ok} of {len(sims)} tasks"
    return ours, "disagree", "no task changes its top layers more than its bottom layers"


def judge_parsing_deeper(n: dict[str, Any]) -> tuple[str, str, str]:
    sims = _depth_profile(n["rsa"])
    lower = {t: float(s[: max(1, len(s) // 2)].mean()) for t, s in sims.items()}
    ours = "; ".join(f"{t}: mean similarity of the lower half {_fmt(v, 3)}"
                     for t, v in lower.items())
    others = [lower[t] for t in ("mnli", "squad") if t in lower]
    if "parsing" not in lower or not others:
        raise BertdriftError("the RSA record needs parsing and at least one of mnli/squad")
    below = sum(lower["parsing"] < o for o in others)
    if below == len(others):
        return ours, "agree", "parsing's lower layers moved further than MNLI's and SQuAD's"
    if below:
        return ours, "partly", "parsing's lower layers moved further than only one other task"
    return ours, "disagree", "parsing's lower layers moved no further than MNLI's or SQuAD's"


def judge_freezing(n: dict[str, Any]) -> tuple[str, str, str]:
    # n["drop"][task] = score at k=0 minus score at the analogous depth (2/3 of the layers frozen)
    # n["k0"][task], n["baseline"][task] (optional) = score with nothing frozen, and the best
    # trivial baseline on the same evaluation set: a drop means nothing if k=0 is at baseline.
    drop = {t: float(v) for t, v in n["drop"].items()}
    k = n.get("k", "2/3 of the layers")
    ours = "; ".join(f"{t}: {_fmt(v, 1)} points lost with {k} layers frozen"
                     for t, v in drop.items())
    k0, base = n.get("k0", {}), n.get("baseline", {})
    weak = [t for t in drop if t in k0 and t in base
            and float(k0[t]) - float(base[t]) < MIN_MARGIN]
    if weak:
        return ours, "inconclusive", (
            f"with nothing frozen, {', '.join(weak)} scored less than {MIN_MARGIN:g} points "
            "above the trivial baseline, so drops from it carry no information")
    small = [drop[t] < 2 for t in ("mnli", "squad") if t in drop]
    parsing_worst = "parsing" in drop and all(
        drop["parsing"] > drop[t] for t in ("mnli", "squad") if t in drop)
    if all(small) and parsing_worst:
        return ours, "agree", "MNLI and SQuAD lose < 2 points and parsing loses the most"
    if parsing_worst:
        return ours, "partly", ("parsing loses the most, but MNLI or SQuAD also lose 2 points "
                                "or more")
    if all(small):
        return ours, "partly", "MNLI and SQuAD lose < 2 points, but parsing does not lose more"
    return ours, "disagree", "neither half of the claim holds"


def judge_out_of_domain(n: dict[str, Any]) -> tuple[str, str, str]:
    # n["gap"][task] = mean top-layer similarity out of domain minus in domain (> 0: weaker
    # change out of domain)
    gap = {t: float(v) for t, v in n["gap"].items()}
    ours = "; ".join(f"{t}: out-of-domain minus in-domain similarity {_fmt(v, 3)}"
                     for t, v in gap.items())
    ok = sum(v > 0 for v in gap.values())
    if ok == len(gap):
        return ours, "agree", "every model changes less on text unlike its task data"
    if ok:
        return ours, "partly", f"true for {ok} of {len(gap)} models"
    return ours, "disagree", "no model changes less out of domain"


CLAIMS = [
    Claim("forgetting", "03_probing",
          "Fine-tuning does not cause catastrophic forgetting of linguistic structure: probing "
          "scores stay close to the pre-trained model's.", judge_forgetting, "probe"),
    Claim("top_layers", "04_rsa",
          "Fine-tuning mostly changes the top layers; lower layers stay similar to pre-trained.",
          judge_top_layers, "rsa_top"),
    Claim("parsing_deeper", "04_rsa",
          "Dependency parsing reconfigures the model more deeply than MNLI or SQuAD.",
          judge_parsing_deeper, "rsa_deep"),
    Claim("freezing", "05_ablations",
          "MNLI and SQuAD barely drop with most lower layers frozen; parsing drops earlier.",
          judge_freezing, "abl"),
    Claim("out_of_domain", "06_out_of_domain",
          "The change is weaker on out-of-domain sentences than on the task's own data.",
          judge_out_of_domain, "ood"),
]


def record_and_judge(profile: Profile, chapter: str, numbers: dict[str, Any]) -> dict[str, str]:
    """Store ``chapter``'s numbers for the claims page and judge the claims it informs; returns
    ``{<glue>_ours, <glue>_verdict, <glue>_why}`` for each, ready for ``book.glue_numbers``."""
    record(profile, chapter, numbers)
    out: dict[str, str] = {}
    for claim in CLAIMS:
        if claim.chapter == chapter:
            ours, verdict, why = claim.judge(numbers)
            out.update({f"{claim.glue}_ours": ours, f"{claim.glue}_verdict": verdict,
                        f"{claim.glue}_why": why})
    return out


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (``claims_<verdict>``) and in all (``claims_total``)."""
    counts = table["verdict"].value_counts()
    out = {f"claims_{v}": int(counts.get(v, 0))
           for v in ("agree", "partly", "disagree", "inconclusive")}
    out["claims_total"] = len(table)
    return out


def claims_table(profile: Profile) -> pd.DataFrame:
    """One row per claim: the paper's claim, our numbers, verdict and why."""
    rows = []
    for claim in CLAIMS:
        numbers = load(profile, claim.chapter)
        if numbers is None:
            rows.append({"claim": claim.paper, "chapter": claim.chapter,
                         "our result": "not run yet for this model and profile",
                         "verdict": "—", "why": f"execute {claim.chapter} first"})
            continue
        ours, verdict, why = claim.judge(numbers)
        rows.append({"claim": claim.paper, "chapter": claim.chapter, "our result": ours,
                     "verdict": verdict, "why": why})
    return pd.DataFrame(rows)


def claims_html(table: pd.DataFrame) -> str:
    """``claims_table`` as an HTML table for the book: every cell escaped, each model's result
    on its own line, each chapter linked to its page (pages sit side by side in the build)."""
    import html

    def cell(column: str, value: Any) -> str:
        text = html.escape(str(value))
        if column == "our result":
            return "<br>".join(html.escape(part) for part in str(value).split("; "))
        if column == "chapter" and str(value)[:2].isdigit():
            return f'<a href="{text}.html">{text}</a>'
        return text

    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(c, row[c])}</td>" for c in table.columns)
                   + "</tr>" for _, row in table.iterrows())
    return (f'<table class="claims-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>")
