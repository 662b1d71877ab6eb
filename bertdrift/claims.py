"""The paper's claims beside our measured numbers.

Each chapter records its headline numbers with ``record(profile, chapter, numbers)`` (a small
JSON file per chapter and profile under ``<cache>/results/claims/``). The claims page reads them
back and judges each claim with the rule written next to it here — one place, in code, so the
verdicts are reproducible and the rules can be read and criticised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertdrift.config import BARELY, DEFAULT_MODEL, MIN_MARGIN, Profile
from bertdrift.errors import BertdriftError
from bertdrift.io import read_json, results_dir, write_json

VERDICTS = ("agree", "disagree", "inconclusive")
"""Every claim is decided from intervals (``decide``); there is no "partly"."""


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


def record_skipped(profile: Profile, chapter: str, skipped: dict[str, str]) -> Path:
    """Store which of a chapter's analyses were left out (name -> reason), for the claims
    page: a task whose corpus cannot be had is skipped, never silently dropped."""
    payload = {"chapter": chapter, "model": profile.model, "profile": profile.name,
               "skipped": dict(skipped)}
    return write_json(claims_dir(profile) / f"{chapter}.skipped.json", payload)


def load_skipped(profile: Profile, chapter: str) -> dict[str, str]:
    path = claims_dir(profile) / f"{chapter}.skipped.json"
    if not path.exists():
        return {}
    payload = read_json(path)
    return dict(payload["skipped"]) if payload.get("model") == profile.model else {}


def skipped_text(skipped: dict[str, str]) -> str:
    """One line for a claims row: which analyses were skipped, why, and how to add them."""
    if not skipped:
        return ""
    return (f"skipped {', '.join(sorted(skipped))}: corpus not available here (not in the data "
            "directory, no download); add it to BERTDRIFT_DATA and re-run the chapter (the "
            "chapter's note says which files)")


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


FORGETTING_RULE = ("a task is informative only if the pre-trained probe beats its best floor "
                   "(trivial baselines, random encoder) with a 95 % interval above 0; agree if "
                   "every fine-tuned model's change on every such task has its interval above "
                   "-tolerance; disagree if any lies wholly below; else inconclusive")


def judge_forgetting(n: dict[str, Any]) -> Judgement:
    """No catastrophic forgetting, judged on *informative* tasks only.

    ``n["tasks"][task]`` holds ``margin`` (the pre-trained score minus the best of its
    baselines: trivial predictors and the random-encoder floor) and ``change[model]`` (the
    fine-tuned minus the pre-trained score), each ``[point, low, high]`` in points with a 95 %
    interval. A task is informative when ``decide(margin vs 0)`` agrees (its interval lies above
    the floor); the others cannot show a loss and are left out. Each (model, informative task)
    change is judged by ``decide`` against ``-tolerance`` (``FORGETTING_TOLERANCE`` unless
    ``n["tolerance"]``): agree when the interval lies above it, disagree when below. The
    verdict: ``disagree`` when any change disagrees (a task was forgotten), ``agree`` when every
    change agrees, ``inconclusive`` otherwise and when no task is informative. The effect shown
    is, per model, the change whose interval reaches lowest."""
    tol = float(n.get("tolerance", FORGETTING_TOLERANCE))
    null = f"-{tol:g} points: a loss of {tol:g} points on an informative task"
    if "tasks" not in n:
        return Judgement("recorded in an older format", "inconclusive",
                         "re-run chapter 3 to record margins and intervals", null=null,
                         rule=FORGETTING_RULE)
    informative = [t for t, r in n["tasks"].items()
                   if decide(Evidence(*map(float, r["margin"]), null=0.0)) == "agree"]
    floor = [t for t in n["tasks"] if t not in informative]
    if not informative:
        return Judgement("no probing task scores above its baselines", "inconclusive",
                         f"rests on 0 of {len(n['tasks'])} tasks: every probe is at its floor, "
                         "so none could show forgetting", null=null, rule=FORGETTING_RULE)
    verdicts: dict[str, dict[str, str]] = {}
    for t in informative:
        for m, ch in n["tasks"][t]["change"].items():
            verdicts.setdefault(m, {})[t] = decide(Evidence(*map(float, ch), null=-tol))
    if not any(verdicts.values()):
        return Judgement("no fine-tuned model was probed", "inconclusive",
                         f"{len(informative)} informative tasks, but no change to judge",
                         null=null, rule=FORGETTING_RULE)
    parts, effects, intervals = [], [], []
    for m, per in verdicts.items():
        changes = {t: [float(x) for x in n["tasks"][t]["change"][m]] for t in per}
        worst = min(changes, key=lambda t: changes[t][0])
        parts.append(f"{m}: worst change {_fmt(changes[worst][0], 1)} points ({worst}), "
                     f"{sum(v == 'agree' for v in per.values())} of {len(per)} tasks clearly "
                     f"within {tol:g} points")
        low = min(changes, key=lambda t: changes[t][1])
        point, lo, hi = changes[low]
        effects.append(f"{m}: {_signed(point, 1)} ({low})")
        intervals.append(f"{m}: [{_signed(lo, 1)}, {_signed(hi, 1)}] ({low})")
    ours = "; ".join(parts)
    extra = dict(effect="; ".join(effects), interval="; ".join(intervals), null=null,
                 rule=FORGETTING_RULE)
    basis = (f"rests on {len(informative)} informative of {len(n['tasks'])} tasks "
             f"({', '.join(informative)}); at floor and left out: {', '.join(floor) or 'none'}")
    lost = [f"{t} after {m}" for m, per in verdicts.items() for t, v in per.items()
            if v == "disagree"]
    if lost:
        return Judgement(ours, "disagree", f"the interval of the change lies below -{tol:g} "
                         f"points for {', '.join(lost)}; {basis}", **extra)
    if all(v == "agree" for per in verdicts.values() for v in per.values()):
        return Judgement(ours, "agree", f"every change's interval lies above -{tol:g} points; "
                         f"{basis}", **extra)
    return Judgement(ours, "inconclusive", f"some changes' intervals reach below -{tol:g} "
                     f"points; {basis}", **extra)


# -- evidence with intervals: one rule for every claim below ----------------------------------
LEVEL = 0.95


def interval_evidence(part: dict[str, Any], level: float = LEVEL) -> Evidence:
    """An ``Evidence`` from one recorded part of a claim.

    ``part``: ``values`` (the effect per fine-tuning seed), optional ``se`` (a further standard
    error: over words from the bootstrap, over evaluation examples, or a seed spread measured
    elsewhere), ``dof`` (degrees of freedom of that spread, when ``values`` has one entry),
    ``null`` and ``side``. The effect is the mean over seeds; its standard error combines the
    seed-to-seed spread (``std / sqrt(n)``) with ``se``; the interval uses Student's t with
    ``n - 1`` (or ``dof``) degrees of freedom, or the normal quantile when neither is known.
    """
    from scipy import stats

    values = np.asarray(part["values"], dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        raise BertdriftError(f"a claim part needs finite values per seed, got {part['values']}")
    n = values.size
    seed_se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    se = float(np.hypot(seed_se, float(part.get("se", 0.0))))
    dof = n - 1 if n > 1 else part.get("dof")
    q = float(stats.t.ppf(0.5 + level / 2, dof)) if dof else float(stats.norm.ppf(0.5 + level / 2))
    mean = float(values.mean())
    return Evidence(mean, mean - q * se, mean + q * se, float(part.get("null", 0.0)),
                    str(part.get("side", "above")))


def conjunction(verdicts: list[str]) -> str:
    """A claim made of parts (one per task, say) holds when every part agrees, fails when any
    part disagrees, and is inconclusive otherwise."""
    if not verdicts:
        raise BertdriftError("a claim needs at least one part")
    if all(v == "agree" for v in verdicts):
        return "agree"
    if any(v == "disagree" for v in verdicts):
        return "disagree"
    return "inconclusive"


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict with what it was decided from, as the claims page shows it."""

    ours: str
    verdict: str
    why: str
    effect: str = "—"
    interval: str = "—"
    null: str = "—"
    rule: str = "—"


def _signed(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}"


def judge_parts(n: dict[str, Any], *, effect: str, null: str, rule: str,
                digits: int = 3) -> Judgement:
    """Judge a claim recorded as ``n["parts"] = {name: part}`` (see ``interval_evidence``):
    each part by ``decide``, the claim by ``conjunction``. ``n["weak"]`` (optional) names parts
    whose models are too close to a trivial baseline to judge: the claim is then inconclusive.
    ``n["note"]`` (optional) is added to the result (e.g. a matched-budget check)."""
    parts = {k: interval_evidence(v) for k, v in n["parts"].items()}
    verdicts = {k: decide(e) for k, e in parts.items()}
    eff = "; ".join(f"{k}: {_signed(e.effect, digits)}" for k, e in parts.items())
    ivs = "; ".join(f"{k}: [{_signed(e.low, digits)}, {_signed(e.high, digits)}]"
                    for k, e in parts.items())
    ours = "; ".join(f"{k}: {_signed(e.effect, digits)} [{_signed(e.low, digits)}, "
                     f"{_signed(e.high, digits)}] → {verdicts[k]}" for k, e in parts.items())
    if n.get("note"):
        ours += f"; {n['note']}"
    weak = list(n.get("weak", []))
    if weak:
        return Judgement(ours, "inconclusive",
                         f"with nothing frozen, {', '.join(weak)} scored less than "
                         f"{MIN_MARGIN:g} points above the trivial baseline, so drops from it "
                         "carry no information", eff, ivs, null, rule)
    verdict = conjunction(list(verdicts.values()))
    counts = {v: sum(x == v for x in verdicts.values()) for v in ("agree", "disagree")}
    why = (f"{counts['agree']} of {len(verdicts)} parts exclude the null on the claim's side, "
           f"{counts['disagree']} on the other side")
    return Judgement(ours, verdict, why, eff, ivs, null, rule)


TOP_RULE = ("agree if, for every task, the 95 % interval (over seeds and words) of the excess "
            "change lies above 0; disagree if any lies below 0; else inconclusive")


def judge_top_layers(n: dict[str, Any]) -> Judgement:
    # parts[task]: per seed, (excess change of the top third) - (excess change of the bottom
    # third), where a layer's excess change is the seed-to-seed RSA (noise ceiling) minus the
    # pre-trained vs fine-tuned RSA on the task's own data
    return judge_parts(n.get("top_layers", n),
                       effect="top-third minus bottom-third change beyond the seed ceiling",
                       null="0: change no larger than seed-to-seed variation, equal across depth",
                       rule=TOP_RULE, digits=4)


def judge_parsing_deeper(n: dict[str, Any]) -> Judgement:
    # parts["parsing - <task>"]: per seed, parsing's mean change (1 - RSA) over layers 1..L/2
    # minus the other task's, on the one shared token set
    return judge_parts(n.get("parsing_deeper", n),
                       effect="parsing's lower-half change minus the other task's "
                       "(1 − RSA, layers 1..L/2, shared words)",
                       null="0: parsing changes its lower layers no more than the other task",
                       rule="agree if both intervals lie above 0; disagree if either lies "
                       "below 0; else inconclusive", digits=4)


def judge_freezing(n: dict[str, Any]) -> Judgement:
    # parts["<mnli|squad> drop"]: score at k=0 minus at k*, null 2 points, claim below;
    # parts["parsing - <task>"]: parsing's drop minus the other task's, null 0, claim above
    return judge_parts(n, effect="points lost with the lower layers frozen (k*), and "
                       "parsing's drop minus the others'",
                       null=f"MNLI/SQuAD: a drop of {BARELY:g} points ('barely'); parsing: "
                       "the same drop as the others",
                       rule="agree if every interval excludes its null on the claim's side; "
                       "disagree if any excludes it on the other side; else inconclusive "
                       "(also inconclusive if a k = 0 model is near its trivial baseline)",
                       digits=1)


def judge_out_of_domain(n: dict[str, Any]) -> Judgement:
    # parts[task]: top-layer RSA out of domain (mean over the other domains) minus in domain
    return judge_parts(n, effect="top-layer RSA out of domain minus in domain",
                       null="0: the change is as large out of domain as in domain",
                       rule="agree if every task's interval lies above 0; disagree if any lies "
                       "below 0; else inconclusive", digits=4)


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


def as_judgement(result: Judgement | tuple[str, str, str]) -> Judgement:
    """A judge's result as a ``Judgement`` (older judges return ``(ours, verdict, why)``)."""
    if isinstance(result, Judgement):
        return result
    ours, verdict, why = result
    return Judgement(ours, verdict, why)


def record_and_judge(profile: Profile, chapter: str, numbers: dict[str, Any]) -> dict[str, str]:
    """Store ``chapter``'s numbers for the claims page and judge the claims it informs; returns
    ``{<glue>_ours, _verdict, _why, _effect, _interval, _null, _rule}`` for each, ready for
    ``book.glue_numbers``."""
    record(profile, chapter, numbers)
    out: dict[str, str] = {}
    for claim in CLAIMS:
        if claim.chapter == chapter:
            j = as_judgement(claim.judge(numbers))
            out.update({f"{claim.glue}_{k}": v for k, v in dataclasses.asdict(j).items()})
    return out


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (``claims_<verdict>``) and in all (``claims_total``)."""
    counts = table["verdict"].value_counts()
    out = {f"claims_{v}": int(counts.get(v, 0))
           for v in VERDICTS}
    out["claims_total"] = len(table)
    return out


MNLI_HISTORY = ("all-MiniLM-L6-v2 was trained on MultiNLI and SNLI pairs before we fine-tune "
                "it on MNLI: its MNLI model starts closer to its task, which can make MNLI "
                "look as if it changes least")
"""The model's history, where it colours a comparison involving MNLI."""

MNLI_CLAIMS = ("top_layers", "parsing_deeper", "freezing", "out_of_domain")


def caveat(profile: Profile, claim_key: str) -> str:
    """What the reader must know about the model and data behind ``claim_key``'s verdict."""
    notes = []
    if profile.model == DEFAULT_MODEL and claim_key in MNLI_CLAIMS:
        notes.append(MNLI_HISTORY)
    return "; ".join(notes) or "—"


def verdict_summary(table: pd.DataFrame) -> dict[str, str]:
    """The closing note's one line per claim (``claims_summary``): chapter, verdict, and each
    part's effect with its interval, as ``claims_table`` holds them."""
    lines = []
    for _, row in table.iterrows():
        ivs = str(row.get("interval", "—"))
        lines.append(f"{row['chapter']}: {row['verdict']}"
                     + (f" (effect and 95 % interval: {ivs})" if ivs != "—" else ""))
    return {"claims_summary": "; ".join(lines)}


def data_caveat(profile: Profile) -> dict[str, str]:
    """What the claims page says about the data and the model behind every verdict:
    ``claims_data`` (training sets, and any substitution) and ``claims_history``."""
    from bertdrift.finetune.report import data_note

    history = (MNLI_HISTORY + "; claims involving MNLI carry this flag"
               if profile.model == DEFAULT_MODEL else "no known overlap with the task data")
    return {"claims_data": data_note(profile), "claims_history": history}


def claims_table(profile: Profile) -> pd.DataFrame:
    """One row per claim: the paper's claim, the effect we measured, its 95 % interval, the
    null it was judged against, the rule, the verdict, why, and the caveat that colours it."""
    rows = []
    for claim in CLAIMS:
        numbers = load(profile, claim.chapter)
        row = {"claim": claim.paper, "chapter": claim.chapter}
        if numbers is None:
            rows.append({**row, "effect": "not run yet for this model and profile",
                         "interval": "—", "null": "—", "rule": "—", "verdict": "—",
                         "why": f"execute {claim.chapter} first", "caveat": "—"})
            continue
        j = as_judgement(claim.judge(numbers))
        effect = j.effect if j.effect != "—" else j.ours
        note = skipped_text(load_skipped(profile, claim.chapter))
        effect = f"{effect}; {note}" if note else effect
        rows.append({**row, "effect": effect, "interval": j.interval, "null": j.null,
                     "rule": j.rule, "verdict": j.verdict, "why": j.why,
                     "caveat": caveat(profile, claim.key)})
    return pd.DataFrame(rows)


def claims_html(table: pd.DataFrame) -> str:
    """``claims_table`` as an HTML table for the book: every cell escaped, each model's result
    on its own line, each chapter linked to its page (pages sit side by side in the build). Each
    cell carries its column name (``data-label``) so that at phone width ``custom.css`` shows
    every claim as a card of labelled lines."""
    import html

    def cell(column: str, value: Any) -> str:
        text = html.escape(str(value))
        if column in ("our result", "effect", "interval"):
            return "<br>".join(html.escape(part) for part in str(value).split("; "))
        if column == "chapter" and str(value)[:2].isdigit():
            return f'<a href="{text}.html">{text}</a>'
        return text

    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f'<td data-label="{html.escape(c)}">{cell(c, row[c])}</td>'
                                    for c in table.columns)
                   + "</tr>" for _, row in table.iterrows())
    return (f'<table class="claims-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>")
