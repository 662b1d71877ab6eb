"""The paper's claims beside our measured numbers.

Each chapter records its evidence with ``record_and_judge(profile, chapter, record)``: a small
JSON file per chapter and profile under ``<cache>/results/claims/``, carrying the fingerprint of
the settings that made it. A record maps a claim's key to ``{"parts": {name: part}, "note":
..., "view": ...}``, each part in the fields of ``bertdrift.inference.Part`` (the effect per
fine-tuning seed, further standard errors, the null, the claim's side, the equivalence margin,
the fine-tuned models it rests on). The claims page reads the records back and judges each
claim here, in one place, with the rules of ``bertdrift.inference``:

1. the **competence gate**: a claim is *not judged* unless every fine-tuned model it rests on
   learned its task (every seed above its best trivial baseline, the seed mean at or above
   ``config.COMPETENCE_FLOORS``), read from chapter 2's record;
2. each part: *agree*, *disagree* (Holm-corrected over the parts), *equivalent* (90 % interval
   inside the claim's ``config.CLAIM_MARGINS``) or *inconclusive*; a part that cannot be
   estimated (one seed, no spread) makes the claim *not judged*, with the reason;
3. the claim: ``inference.conjunction`` of its parts' readings (for a claim of absence, an
   equivalent part agrees with the paper).
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertdrift.config import CLAIM_MARGINS, COMPETENCE_FLOORS, DEFAULT_MODEL, TASKS, Profile
from bertdrift.errors import ConfigError
from bertdrift.inference import (
    VERDICTS,
    InferenceError,
    Part,
    PartResult,
    conjunction,
    judge_parts,
    reading,
)
from bertdrift.io import read_json, results_dir, stable_hash, write_json

NOT_JUDGED = "not judged"
COMPETENCE_CHAPTER = "02_finetuning"
RUNTIME_FIELDS = ("data_dir", "cache_dir", "device")
"""Profile fields that say where and on what a run happens, not what it computes: left out of
the settings fingerprint (a copied cache or another data folder of the same files agrees)."""


def settings_fingerprint(profile: Profile) -> str:
    """A short hash of every setting that shapes a result (``RUNTIME_FIELDS`` left out)."""
    settings = {k: v for k, v in dataclasses.asdict(profile).items() if k not in RUNTIME_FIELDS}
    return stable_hash(settings)[:12]


def claims_dir(profile: Profile) -> Path:
    return results_dir(profile.cache_path, "claims") / profile.name


def record(profile: Profile, chapter: str, numbers: dict[str, Any]) -> Path:
    """Store a chapter's evidence (JSON-serialisable) for the claims page, with the model,
    profile and settings fingerprint that produced it."""
    payload = {"chapter": chapter, "model": profile.model, "profile": profile.name,
               "settings": settings_fingerprint(profile), "numbers": numbers}
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


def _payload(profile: Profile, chapter: str) -> dict[str, Any] | None:
    path = claims_dir(profile) / f"{chapter}.json"
    if not path.exists():
        return None
    payload = read_json(path)
    return payload if payload.get("model") == profile.model else None


def load(profile: Profile, chapter: str) -> dict[str, Any] | None:
    """A chapter's recorded evidence for this profile and model (``None`` if not run)."""
    payload = _payload(profile, chapter)
    return None if payload is None else dict(payload["numbers"])


def check_settings(profile: Profile, chapters: list[str]) -> None:
    """Refuse to combine records made with other settings than ``profile``'s: one error that
    names the chapters to re-run."""
    want = settings_fingerprint(profile)
    stale = [c for c in chapters
             if (p := _payload(profile, c)) is not None and p.get("settings") != want]
    if stale:
        raise ConfigError(
            f"the claims records of {', '.join(stale)} were made with other settings than "
            f"this profile's ({profile.name}, fingerprint {want}); re-run "
            f"{', '.join(stale)} with the same profile and overrides as this page (or run "
            "this page with theirs), so that one page never mixes runs")


# -- the competence gate -------------------------------------------------------------------
def competence_shortfalls(competence: dict[str, Any] | None, tasks: list[str]) -> list[str]:
    """Why the fine-tuned models of ``tasks`` cannot be judged (empty when they all learned):
    a seed at or below its best trivial baseline, or a seed mean below the task's floor."""
    if competence is None:
        return [f"chapter {COMPETENCE_CHAPTER} has not recorded the models' scores under these "
                "settings: run it"]
    out = []
    for t in tasks:
        c = competence.get(t)
        if c is None:
            out.append(f"{t}: no recorded score")
            continue
        scores = [float(s) for s in c["scores"]]
        base, floor = float(c["baseline"]), COMPETENCE_FLOORS[t].value
        low = [f"{s:.1f}" for s in scores if s <= base]
        if low:
            out.append(f"{t}: seed score(s) {', '.join(low)} not above the trivial baseline "
                       f"{base:.1f}")
        mean = float(np.mean(scores))
        if mean < floor:
            out.append(f"{t}: seed mean {mean:.1f} below the floor {floor:g} "
                       f"({COMPETENCE_FLOORS[t].unit}), short by {floor - mean:.1f}")
    return out


def load_competence(profile: Profile) -> dict[str, Any] | None:
    """Chapter 2's per-seed scores and baselines, if recorded under ``profile``'s settings."""
    payload = _payload(profile, COMPETENCE_CHAPTER)
    if payload is None or payload.get("settings") != settings_fingerprint(profile):
        return None
    return payload["numbers"].get("competence")


def competence_table() -> pd.DataFrame:
    """The gate's floors with their units and reasons (the claims page shows them)."""
    return pd.DataFrame([{"task": t, "floor": f.value, "unit": f.unit, "reason": f.reason}
                         for t, f in COMPETENCE_FLOORS.items()]).set_index("task")


def margins_table() -> pd.DataFrame:
    """Each claim's margin of practical irrelevance with its unit and reason."""
    return pd.DataFrame([{"claim": k, "margin": f"± {m.value:g}", "unit": m.unit,
                          "reason": m.reason} for k, m in CLAIM_MARGINS.items()]
                        ).set_index("claim")


# -- claims and their judgement -------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    key: str
    chapter: str
    paper: str
    glue: str
    """Prefix of the glue names its chapter quotes the verdict under (``<glue>_verdict``)."""
    effect: str
    null: str
    rule: str
    digits: int = 3
    beyond_paper: bool = False
    """A question the book adds (chapter 7), not one of the paper's claims."""


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict with what it was decided from, as the claims page shows it."""

    ours: str
    verdict: str
    why: str
    effect: str = "—"
    interval: str = "—"
    null: str = "—"
    margin: str = "—"
    rule: str = "—"
    parts: tuple[dict[str, Any], ...] = ()


def _signed(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}"


def _margin_text(key: str) -> str:
    m = CLAIM_MARGINS[key]
    return f"± {m.value:g} {m.unit}: {m.reason}"


RULE = ("each part: agree if its 95 % interval lies wholly on the claim's side of the null; "
        "disagree if it lies wholly on the other side (Holm-corrected over the parts); "
        "equivalent if its 90 % interval lies inside ± the margin; else inconclusive. The claim: "
        "disagree if any part disagrees, agree if every part agrees, equivalent if every part "
        "is equivalent, else inconclusive")


def _weakest(results: dict[str, PartResult]) -> str:
    """The part whose interval comes closest to (or crosses) its null on the claim's side:
    the weakest link of a conjunction."""
    def slack(r: PartResult) -> float:
        p = r.part
        return (r.low - p.null) if p.side == "above" else (p.null - r.high)
    return min(results, key=lambda k: slack(results[k]))


def _row(name: str, r: PartResult) -> dict[str, Any]:
    return {"part": name, "effect": r.effect, "low": r.low, "high": r.high, "low90": r.low90,
            "high90": r.high90, "null": r.part.null, "side": r.part.side,
            "margin": r.part.margin, "p_disagree": r.p_disagree, "verdict": r.verdict,
            "reading": reading(r)}


def judge(claim: Claim, numbers: dict[str, Any] | None,
          competence: dict[str, Any] | None) -> Judgement:
    """Judge ``claim`` from its chapter's record (see the module docstring)."""
    if numbers is None or claim.key not in numbers:
        return Judgement("not run yet for this model and profile", "—",
                         f"execute {claim.chapter} first", null=claim.null,
                         margin=_margin_text(claim.key), rule=claim.rule)
    rec = numbers[claim.key]
    note = f"; {rec['note']}" if rec.get("note") else ""
    base = dict(null=claim.null, margin=_margin_text(claim.key), rule=claim.rule)
    if rec.get("not_judged"):
        return Judgement(str(rec["not_judged"]) + note, NOT_JUDGED, str(rec["not_judged"]),
                         **base)
    try:
        margin = CLAIM_MARGINS[claim.key].value  # a part may carry its own (forgetting)
        parts = {k: Part.from_record({"margin": margin, **v}) for k, v in rec["parts"].items()}
        results = judge_parts(parts)
    except InferenceError as err:
        return Judgement(f"cannot be estimated: {err}{note}", NOT_JUDGED, str(err), **base)
    d = claim.digits
    rows = tuple(_row(k, r) for k, r in results.items())
    readings = [reading(r) for r in results.values()]
    verdict = conjunction(readings)
    w = _weakest(results)
    rw = results[w]
    effect = f"{w}: {_signed(rw.effect, d)}" + (f" (weakest of {len(results)} parts)"
                                                  if len(results) > 1 else "")
    interval = f"{w}: [{_signed(rw.low, d)}, {_signed(rw.high, d)}]"
    ours = "; ".join(f"{k}: {_signed(r.effect, d)} [{_signed(r.low, d)}, {_signed(r.high, d)}]"
                     f" → {r.verdict}" for k, r in results.items()) + note
    counts = {v: readings.count(v) for v in ("agree", "disagree", "equivalent", "inconclusive")}
    why = ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" of {len(readings)} parts"
    models = sorted({m for p in parts.values() for m in p.models}, key=list(TASKS).index) \
        or list(TASKS)
    short = competence_shortfalls(competence, models)
    if short:
        return Judgement(ours, NOT_JUDGED, "a model behind the claim has not learned its task: "
                         + "; ".join(short) + f" (the parts alone would read: {verdict})",
                         effect, interval, parts=rows, **base)
    return Judgement(ours, verdict, why, effect, interval, parts=rows, **base)


CLAIMS = [
    Claim("forgetting", "03_probing",
          "Fine-tuning does not cause catastrophic forgetting of linguistic structure: probing "
          "scores stay close to the pre-trained model's.", "probe",
          effect="fine-tuned minus pre-trained probing score (points; scalar mix and top "
          "layer, informative tasks only)",
          null="a loss of a quarter of the pre-trained margin over the task's best floor",
          rule=RULE + " (a claim of absence: equivalent parts agree with the paper)", digits=1),
    Claim("top_layers", "04_rsa",
          "Fine-tuning mostly changes the top layers; lower layers stay similar to pre-trained.",
          "rsa_top", effect="ceiling-corrected change per layer, 1 − √(RSA(pre, a)·RSA(pre, "
          "b) / RSA(a, b)) over seed pairs a, b (to first order 1 − RSA(pre, ft) − ½(1 − "
          "RSA(a, b))), top third minus bottom third of the layers",
          null="0: the change is equal across depth", rule=RULE, digits=4),
    Claim("parsing_deeper", "04_rsa",
          "Dependency parsing reconfigures the model more deeply than MNLI or SQuAD.",
          "rsa_deep", effect="share of the ceiling-corrected change in the lower half of the "
          "layers, parsing minus the other task (shared words)",
          null="0: parsing's change is no deeper than the other task's", rule=RULE, digits=4),
    Claim("freezing", "05_ablations",
          "MNLI and SQuAD barely drop with most lower layers frozen; parsing drops earlier.",
          "abl", effect="drop with the lower layers frozen, as a fraction of the task's k = 0 "
          "margin over its trivial baseline; parsing's minus the others'",
          null="MNLI/SQuAD: a drop of the margin (± value below); parsing: the same drop as "
          "the others", rule=RULE + " (MNLI/SQuAD parts are claims of absence)", digits=3),
    Claim("out_of_domain", "06_out_of_domain",
          "The change is weaker on out-of-domain sentences than on the task's own data.",
          "ood", effect="top-layer RSA on unseen text (WikiText-2, GENTLE) minus on the task's "
          "own data, per seed", null="0: the change is as large out of domain as in domain",
          rule=RULE, digits=4),
    Claim("saturation", "07_dynamics",
          "(beyond the paper) The development score reaches 90 % of its end-of-run gain before "
          "the representations reach 90 % of their change.", "dyn_sat",
          effect="fraction of training at which the dev score reaches 90 % of its gain minus "
          "that of the mean representation change, per seed",
          null="0: both at the same point of training", rule=RULE, digits=3,
          beyond_paper=True),
    Claim("sharpening", "07_dynamics",
          "(beyond the paper) The depth profile sharpens during training: the top third's share "
          "of the change grows from the first snapshot to the last.", "dyn_sharp",
          effect="top third's share of the change at the last snapshot minus at the first "
          "after step 0, per seed", null="0: the share does not move", rule=RULE, digits=3,
          beyond_paper=True),
]
CLAIM_KEYS = tuple(c.key for c in CLAIMS)


def record_and_judge(profile: Profile, chapter: str, numbers: dict[str, Any]) -> dict[str, str]:
    """Store ``chapter``'s evidence for the claims page and judge the claims it informs;
    returns ``{<glue>_ours, _verdict, _why, _effect, _interval, _null, _margin, _rule}`` for
    each, ready for ``book.glue_numbers``."""
    record(profile, chapter, numbers)
    competence = load_competence(profile)
    out: dict[str, str] = {}
    for claim in CLAIMS:
        if claim.chapter == chapter:
            j = judge(claim, numbers, competence)
            out.update({f"{claim.glue}_{k}": v for k, v in dataclasses.asdict(j).items()
                        if k != "parts"})
    return out


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict (``claims_<verdict>``, spaces as ``_``) and in all."""
    counts = table["verdict"].value_counts()
    out = {f"claims_{v.replace(' ', '_')}": int(counts.get(v, 0)) for v in VERDICTS}
    out["claims_total"] = len(table)
    return out


MNLI_HISTORY = ("all-MiniLM-L6-v2 was trained on MultiNLI and SNLI pairs before we fine-tune "
                "it on MNLI: every MNLI comparison measures a model that already saw the task's "
                "kind of data, which can make MNLI look as if it changes least")
"""The model's history, where it colours a comparison involving MNLI."""

MNLI_CLAIMS = ("forgetting", "top_layers", "parsing_deeper", "freezing", "out_of_domain",
               "saturation", "sharpening")


def caveat(profile: Profile, claim_key: str) -> str:
    """What the reader must know about the model and data behind ``claim_key``'s verdict."""
    notes = []
    if profile.model == DEFAULT_MODEL and claim_key in MNLI_CLAIMS:
        notes.append(MNLI_HISTORY)
    return "; ".join(notes) or "—"


def verdict_summary(table: pd.DataFrame) -> dict[str, str]:
    """The closing note's one line per claim (``claims_summary``): claim key, verdict, and the
    weakest part's effect with its interval."""
    lines = []
    for _, row in table.iterrows():
        ivs = str(row.get("interval", "—"))
        lines.append(f"{row['key']}: {row['verdict']}"
                     + (f" ({ivs})" if ivs != "—" else ""))
    return {"claims_summary": "; ".join(lines)}


def data_caveat(profile: Profile) -> dict[str, str]:
    """What the claims page says about the data and the model behind every verdict:
    ``claims_data`` (training sets, and any substitution) and ``claims_history``."""
    from bertdrift.finetune.report import data_note

    history = (MNLI_HISTORY + "; claims involving MNLI carry this flag"
               if profile.model == DEFAULT_MODEL else "no known overlap with the task data")
    return {"claims_data": data_note(profile), "claims_history": history}


def claims_table(profile: Profile) -> pd.DataFrame:
    """One row per claim: the paper's claim, the verdict, the weakest part's effect and 95 %
    interval, the null, the equivalence margin, the rule, why, the caveat, and every part
    (``parts``). Refuses records made with other settings (``check_settings``)."""
    check_settings(profile, sorted({c.chapter for c in CLAIMS} | {COMPETENCE_CHAPTER}))
    competence = load_competence(profile)
    rows = []
    for claim in CLAIMS:
        j = judge(claim, load(profile, claim.chapter), competence)
        note = skipped_text(load_skipped(profile, claim.chapter))
        effect = j.effect if j.effect != "—" else j.ours
        effect = f"{effect}; {note}" if note else effect
        rows.append({"key": claim.key, "claim": claim.paper, "chapter": claim.chapter,
                     "verdict": j.verdict, "effect": effect, "interval": j.interval,
                     "null": j.null, "margin": j.margin, "rule": j.rule, "why": j.why,
                     "caveat": caveat(profile, claim.key), "measure": claim.effect,
                     "parts": list(j.parts), "digits": claim.digits,
                     **_view(claim, load(profile, claim.chapter))})
    return pd.DataFrame(rows)


def _view(claim: Claim, numbers: dict[str, Any] | None) -> dict[str, Any]:
    """A claim's second view (``record[key]["view"] = {"title", "parts"}``), its parts judged
    by the same rule for display: ``view_title`` and ``view_parts`` (empty when there is none
    or it cannot be estimated)."""
    view = ((numbers or {}).get(claim.key) or {}).get("view") or {}
    if not isinstance(view, dict) or not isinstance(view.get("parts"), dict) or not view["parts"]:
        return {"view_title": "", "view_parts": []}
    try:
        margin = CLAIM_MARGINS[claim.key].value
        results = judge_parts({k: Part.from_record({"margin": margin, **v})
                               for k, v in view["parts"].items()})
    except (InferenceError, TypeError):
        return {"view_title": "", "view_parts": []}
    return {"view_title": str(view.get("title", "")),
            "view_parts": [_row(k, r) for k, r in results.items()]}


def _chapter_link(chapter: str) -> str:
    text = html.escape(chapter)
    return f'<a href="{text}.html">{text}</a>' if chapter[:2].isdigit() else text


def _parts_html(parts: list[dict[str, Any]], digits: int) -> str:
    if not parts:
        return ""
    head = ("<tr><th>part</th><th>effect</th><th>95 % interval</th><th>90 % interval</th>"
            "<th>null</th><th>margin</th><th>verdict</th></tr>")
    f = f"{{:+.{digits}f}}"
    body = "".join(
        f"<tr><td>{html.escape(p['part'])}</td><td>{f.format(p['effect'])}</td>"
        f"<td>[{f.format(p['low'])}, {f.format(p['high'])}]</td>"
        f"<td>[{f.format(p['low90'])}, {f.format(p['high90'])}]</td>"
        f"<td>{f.format(p['null'])} ({'claim above' if p['side'] == 'above' else 'claim below'})"
        f"</td><td>{'—' if p['margin'] is None else '± ' + f.format(p['margin']).lstrip('+')}</td>"
        f"<td>{html.escape(p['reading'])}</td></tr>" for p in parts)
    return f'<table class="claims-parts"><thead>{head}</thead><tbody>{body}</tbody></table>'


def claims_html(table: pd.DataFrame) -> str:
    """``claims_table`` for the book: a summary table a reader takes in at a glance (claim,
    chapter, verdict, the weakest part's effect and interval), then each claim folded
    (``<details>``) with its measure, null, margin, rule, reasons, caveat and every part. Every
    cell is escaped; each cell carries its column name (``data-label``) so that at phone width
    ``custom.css`` shows every claim as a card of labelled lines."""
    cols = ("claim", "chapter", "verdict", "effect [95 % interval]")
    head = "".join(f"<th>{c}</th>" for c in cols)
    rows = []
    for _, r in table.iterrows():
        iv = str(r["interval"]).split(": ", 1)[-1]
        eff = html.escape(str(r["effect"])) + ("" if iv == "—" else " " + html.escape(iv))
        cells = {"claim": html.escape(str(r["claim"])), "chapter": _chapter_link(r["chapter"]),
                 "verdict": f'<span class="verdict">{html.escape(str(r["verdict"]))}</span>',
                 "effect [95 % interval]": eff}
        rows.append("<tr>" + "".join(f'<td data-label="{c}">{cells[c]}</td>' for c in cols)
                    + "</tr>")
    summary = (f'<table class="claims-table"><thead><tr>{head}</tr></thead>'
               f"<tbody>{''.join(rows)}</tbody></table>")
    details = []
    for _, r in table.iterrows():
        items = "".join(f"<li><b>{k}</b>: {html.escape(str(r[k]))}</li>"
                        for k in ("measure", "null", "margin", "rule", "why", "caveat"))
        view = ""
        if r.get("view_parts"):
            view = (f"<p><b>Second view</b> ({html.escape(str(r['view_title']))}; shown, not "
                    "judged):</p>" + _parts_html(r["view_parts"], int(r["digits"])))
        details.append(f'<details class="claim-details"><summary>{html.escape(r["key"])}: '
                       f'{html.escape(str(r["verdict"]))}</summary><ul>{items}</ul>'
                       f"{_parts_html(r['parts'], int(r['digits']))}{view}</details>")
    return summary + "".join(details)
