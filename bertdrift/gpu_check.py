"""Time the ``paper`` profile on this machine and project its full wall time.

``python -m bertdrift.gpu_check`` (what ``scripts/gpu_check.sh`` runs) measures, with the
paper's recipes at full sequence length and a bounded number of steps
(``bertdrift.bounded.bounded_profile``):

- each fine-tuning task (MNLI, SQuAD, UD parsing): training samples/s and peak GPU memory;
- feature extraction (the activation store, all layers): sentences/s;
- edge- and structural-probe training: steps/s;

and projects the wall time of every stage of the full ``paper`` book from those rates and the
full datasets' sizes (:data:`WORKLOAD`). The projection (README, "GPU check"): a stage's time is
its work divided by its measured rate; evaluation passes are forward-only, counted at three
times the training rate (a backward pass costs about two forward passes); the freezing sweep's
run at depth ``k`` takes the ``k = 0`` run's time divided by
``bertdrift.ablations.predicted_speedup`` (the frozen-prefix cache). Timing does not depend on
the weights, so when the paper's model cannot be downloaded a randomly initialised model of its
shape (BERT-base: 12 layers, 768 wide, the 30,522-word uncased vocabulary of the packaged
tokenizer) stands in, and the report says so.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertdrift.ablations import predicted_speedup
from bertdrift.bounded import bounded_profile
from bertdrift.config import TASKS, Profile, get_profile

WORKLOAD: dict[str, Any] = {
    # training features / evaluation features of the full datasets (SQuAD: 384-token windows,
    # stride 128, as run_qa counts them for bert-base-uncased)
    "mnli": {"train": 392_702, "eval": 9_815 + 9_832},
    "squad": {"train": 88_524, "eval": 10_784},
    "parsing": {"train": 12_544, "eval": 2_001},
    # unique sentences chapter 3 extracts features for (UD EWT, GUM, PropBank SRL, SPR2,
    # SemEval, DPR; approximate) and training sentences of each edge task
    "probe_sentences": 40_000,
    "edge_train_sentences": {"pos": 12_544, "deps": 12_544, "consts": 9_000, "entities": 9_000,
                             "coref": 9_000, "srl": 10_000, "spr2": 2_000, "rel": 8_000,
                             "dpr": 1_300},
    "control_tasks": ("pos", "deps"),
    "structural_kinds": 2,
    "ood_domains": 5,
}
"""Sizes of the full ``paper`` workload the projection multiplies the measured rates by."""


def _peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def stand_in_model(folder: Path) -> Path:
    """A random BERT-base-shaped encoder with the packaged uncased tokenizer, for timing."""
    from transformers import BertConfig, BertModel

    from bertdrift.models import load_tokenizer

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        BertModel(BertConfig()).save_pretrained(folder)  # BertConfig() is BERT-base's shape
        load_tokenizer(None).save_pretrained(folder)
    return folder


def _model_for(profile: Profile, work: Path) -> tuple[str, str]:
    """The model to time and a note: the profile's own, or a stand-in of BERT-base's shape."""
    from bertdrift.errors import ModelError
    from bertdrift.models import load_tokenizer

    try:
        load_tokenizer(profile.model)
        return profile.model, f"{profile.model} (the profile's model)"
    except ModelError:
        path = stand_in_model(work / "bert-base-shaped")
        return str(path), (f"{profile.model} could not be loaded here; timed a randomly "
                           "initialised model of BERT-base's shape instead (same cost)")


def measure(profile: Profile, *, steps: int, work: Path, tasks: tuple[str, ...] = TASKS,
            probe_sentences: int = 1000) -> dict[str, Any]:
    """Bounded runs of ``profile``'s recipes; rates and peak memory per stage."""
    from bertdrift.config import resolve_device
    from bertdrift.data import load_ud
    from bertdrift.families import num_blocks
    from bertdrift.features import extract_features
    from bertdrift.finetune import get_finetuned
    from bertdrift.models import load_encoder, load_tokenizer
    from bertdrift.probing import (
        EdgeProbeConfig,
        StructuralConfig,
        encode_targets,
        train_edge_probes_seeds,
        train_structural_probes_seeds,
        trees_from_ud,
    )

    device = resolve_device(profile.device)
    model, note = _model_for(profile, work)
    P = bounded_profile(profile, max_steps=steps, model=model, seeds=(0,),
                        cache_dir=str(work / "cache"))
    out: dict[str, Any] = {"model": note, "device": device, "steps": steps, "stages": {}}
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name()
    for task in tasks:
        _peak_reset(device)
        t0 = time.perf_counter()
        run = get_finetuned(task, P, progress=False)
        h = run.history[-1]
        out["stages"][f"finetune_{task}"] = {
            "samples_per_s": h["train_samples_per_s"], "train_seconds": h["train_seconds"],
            "steps": h["steps"], "wall_seconds": time.perf_counter() - t0,
            "peak_gib": _peak_gib(device)}
    rows = load_ud("dev", data_dir=profile.data_dir, limit=probe_sentences)
    sentences = [list(t) for t in rows["tokens"]]
    enc, tok = load_encoder(model, device=device), load_tokenizer(model)
    out["layers"] = num_blocks(enc.config)
    _peak_reset(device)
    t0 = time.perf_counter()
    fs = extract_features(enc, tok, sentences, pooling=P.pooling,
                          batch_size=P.feature_batch_size, max_length=P.feature_max_length,
                          cache_root=work / "cache" / "features", device=device, progress=False)
    seconds = time.perf_counter() - t0
    out["stages"]["features"] = {"sentences_per_s": len(sentences) / seconds,
                                 "wall_seconds": seconds, "peak_gib": _peak_gib(device)}
    del enc
    feats = torch.from_numpy(np.array(fs.array))
    starts = fs.offsets[:-1].tolist()
    labels = sorted({u for r in rows["upos"] for u in r})
    edge_rows = [{"tokens": t, "targets": [{"span1": [i, i + 1], "span2": None, "label": u}
                                           for i, u in enumerate(up)]}
                 for t, up in zip(sentences, rows["upos"], strict=True)]
    data = encode_targets(edge_rows, labels, starts, multilabel=False, single_span=True)
    cfg = EdgeProbeConfig(proj_dim=P.probe_hidden, hidden=P.probe_hidden, epochs=P.probe_epochs,
                          batch_size=P.probe_batch_size, lr=P.probe_lr)
    probe_steps = min(steps, math.ceil(len(sentences) / P.probe_batch_size) * P.probe_epochs)
    _peak_reset(device)
    t0 = time.perf_counter()
    train_edge_probes_seeds(feats, data, {}, cfg, seeds=P.probe_seeds, progress=False,
                            device=device, max_steps=probe_steps)
    seconds = time.perf_counter() - t0
    out["stages"]["edge_probes"] = {"steps_per_s": probe_steps / seconds,
                                    "wall_seconds": seconds, "peak_gib": _peak_gib(device)}
    tree_rows = [{"head": list(h), "upos": list(u)}
                 for h, u in zip(rows["head"], rows["upos"], strict=True)]
    trees = trees_from_ud(tree_rows, starts)
    dev = trees_from_ud(tree_rows[:8], starts[:8])  # evaluation is not what is timed
    scfg = StructuralConfig(rank=P.structural_rank, epochs=P.probe_epochs,
                            batch_size=P.probe_batch_size, lr=P.probe_lr)
    _peak_reset(device)
    t0 = time.perf_counter()
    train_structural_probes_seeds(feats, trees, dev, "distance", scfg, seeds=P.probe_seeds,
                                  progress=False, device=device, max_steps=probe_steps)
    seconds = time.perf_counter() - t0
    out["stages"]["structural_probes"] = {"steps_per_s": probe_steps / seconds,
                                          "wall_seconds": seconds,
                                          "peak_gib": _peak_gib(device)}
    return out


def project(measured: dict[str, Any], profile: Profile,
            workload: dict[str, Any] = WORKLOAD) -> dict[str, float]:
    """Projected seconds of each stage of the full ``profile`` book (see the module text)."""
    stages = measured["stages"]
    num_layers = int(measured.get("layers", 12))
    seeds = len(profile.seeds)
    out: dict[str, float] = {}
    finetune = sweep = replace = 0.0
    for task in TASKS:
        rate = stages[f"finetune_{task}"]["samples_per_s"]
        epochs = profile.recipe(task).epochs
        one = (workload[task]["train"] * epochs / rate
               + workload[task]["eval"] * epochs / (3 * rate))
        finetune += one * seeds
        ks = range(num_layers + 1) if profile.ablation_ks is None else profile.ablation_ks
        sweep += seeds * sum(one / predicted_speedup(num_layers, k, epochs) for k in ks if k)
        replace += 2 * num_layers * workload[task]["eval"] / (3 * rate)
    out["02 fine-tuning (3 tasks x seeds)"] = finetune
    sent_rate = stages["features"]["sentences_per_s"]
    steps_per_model = 0.0
    edge = workload["edge_train_sentences"]
    for n in edge.values():
        steps_per_model += math.ceil(n / profile.probe_batch_size) * profile.probe_epochs
    for task in workload["control_tasks"]:
        steps_per_model += math.ceil(edge[task] / profile.probe_batch_size) * profile.probe_epochs
    structural = (workload["structural_kinds"] * math.ceil(edge["pos"] / profile.probe_batch_size)
                  * profile.probe_epochs)
    models = 1 + len(TASKS)
    out["03 probing: features"] = models * workload["probe_sentences"] / sent_rate
    out["03 probing: probes"] = models * (steps_per_model / stages["edge_probes"]["steps_per_s"]
                                          + structural / stages["structural_probes"][
                                              "steps_per_s"])
    out["04 RSA: features"] = (1 + len(TASKS) * seeds) * len(TASKS) * (
        profile.rsa_tokens / 20) / sent_rate
    out["05 ablations: freezing sweep"] = sweep
    out["05 ablations: layer replacement"] = replace
    out["06 out of domain: features"] = (models * workload["ood_domains"]
                                         * profile.ood_sentences / sent_rate)
    out["total"] = sum(out.values())
    return out


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def report(measured: dict[str, Any], projection: dict[str, float]) -> str:
    lines = [f"model: {measured['model']}", f"device: {measured.get('gpu', measured['device'])}",
             f"bounded to {measured['steps']} steps per stage", "",
             f"{'stage':28s} {'rate':>16s} {'peak GPU GiB':>13s}"]
    for name, s in measured["stages"].items():
        if "samples_per_s" in s:
            rate = f"{s['samples_per_s']:.1f} samples/s"
        elif "sentences_per_s" in s:
            rate = f"{s['sentences_per_s']:.1f} sent/s"
        else:
            rate = f"{s['steps_per_s']:.1f} steps/s"
        peak = "-" if s["peak_gib"] is None else f"{s['peak_gib']:.2f}"
        lines.append(f"{name:28s} {rate:>16s} {peak:>13s}")
    lines += ["", "projected wall time of the full profile:"]
    lines += [f"  {name:36s} {_hours(sec):>9s}" for name, sec in projection.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertdrift.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--model", default=None, help="model to time (default: the profile's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per stage")
    parser.add_argument("--sentences", type=int, default=1000,
                        help="UD dev sentences for the feature and probe timings")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args(argv)
    over: dict[str, Any] = {"device": args.device}
    if args.model:
        over["model"] = args.model
    profile = get_profile(args.profile, **over)
    with tempfile.TemporaryDirectory(prefix="bertdrift-gpu-check-") as tmp:
        work = args.work or Path(tmp)
        measured = measure(profile, steps=args.steps, work=work,
                           probe_sentences=args.sentences)
    projection = project(measured, profile)
    print(report(measured, projection))
    if args.out is not None:
        from bertdrift.io import write_json

        write_json(args.out, {"measured": measured, "projection_seconds": projection})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
