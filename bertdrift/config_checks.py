"""The rules every profile setting must obey, each error naming the setting and the fix.

Kept apart from :mod:`bertdrift.config` (which applies them in ``get_profile``) so that file
stays a readable list of profiles.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bertdrift.errors import ConfigError

__all__ = ["bad_setting", "check_depths", "check_freeze", "check_recipe", "check_settings",
           "model_depth_hint"]


def bad_setting(setting: str, value: Any, rule: str) -> ConfigError:
    return ConfigError(f"{setting}={value!r} is not valid: {rule}; override {setting} "
                       f"(e.g. --set {setting}=...) or drop the override to use the default")


def check_recipe(task: str, r: Any) -> None:
    for sub in ("lr", "warmup_ratio", "weight_decay", "head_lr"):
        value = getattr(r, sub)
        if value is not None and not math.isfinite(value):
            raise bad_setting(f"{task}_{sub}", value, "must be a finite number")
    for sub in ("train_size", "eval_size"):
        value = getattr(r, sub)
        if value is not None and value < 1:
            raise bad_setting(f"{task}_{sub}", value, "must be >= 1, or None for the whole split")
    if not 0 <= r.warmup_ratio <= 1:
        raise bad_setting(f"{task}_warmup_ratio", r.warmup_ratio, "must be in [0, 1] (a fraction of "
                   "the training steps)")
    if r.weight_decay < 0:
        raise bad_setting(f"{task}_weight_decay", r.weight_decay, "must be >= 0")
    if r.head_lr is not None and r.head_lr <= 0:
        raise bad_setting(f"{task}_head_lr", r.head_lr, "must be > 0, or None to use the lr")
    if task == "squad" and not 1 <= r.stride < r.max_length:
        raise bad_setting(f"{task}_stride", r.stride, f"must be in 1..{r.max_length - 1} (below "
                   f"{task}_max_length={r.max_length})")


SQUAD_DEV_ARTICLES = 48
"""Articles in SQuAD v1.1 dev, which the offline runs split into fine-tuning and evaluation."""
KNOWN_DEPTHS = {"minilm": 6, "bert-base-uncased": 12, "bert-base-cased": 12,
                "bert-large-uncased": 24, "bert-large-cased": 24}


def model_depth_hint(model: str) -> int | None:
    """The number of layers of ``model`` when known without loading it (else ``None``)."""
    if model in KNOWN_DEPTHS:
        return KNOWN_DEPTHS[model]
    config = Path(model).expanduser() / "config.json"
    try:
        return int(json.loads(config.read_text())["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_settings(p: Any) -> None:
    if not isinstance(p.model, str) or not p.model.strip():
        raise bad_setting("model", p.model, "needs a model: 'minilm' (the packaged default), a Hugging "
                   "Face id such as 'bert-base-uncased', or a checkpoint directory")
    positive = ("probe_epochs", "probe_batch_size", "probe_hidden", "feature_batch_size",
                "structural_rank", "rsa_tokens", "rsa_bootstrap", "ood_sentences")
    for name in positive:
        if getattr(p, name) < 1:
            raise bad_setting(name, getattr(p, name), "must be >= 1")
    if not (math.isfinite(p.probe_lr) and p.probe_lr > 0):
        raise bad_setting("probe_lr", p.probe_lr, "must be a finite number > 0")
    if p.feature_max_length < 8:
        raise bad_setting("feature_max_length", p.feature_max_length, "must be >= 8 subwords (the "
                   "encoder's limit, e.g. 512, is applied anyway)")
    if not 1 <= p.squad_eval_articles < SQUAD_DEV_ARTICLES:
        raise bad_setting("squad_eval_articles", p.squad_eval_articles, "must be in 1.."
                   f"{SQUAD_DEV_ARTICLES - 1} (SQuAD v1.1 dev has {SQUAD_DEV_ARTICLES} articles; "
                   "the rest fine-tune)")
    if p.ablation_ks is not None:
        if not p.ablation_ks:
            raise bad_setting("ablation_ks", list(p.ablation_ks), "needs at least one depth (or None "
                       "for every depth 0..L)")
        bad = [k for k in p.ablation_ks if k < 0]
        if bad:
            raise bad_setting("ablation_ks", list(p.ablation_ks), f"depths {bad} are negative")


def check_freeze(p: Any, freeze: int) -> None:
    """A frozen depth must be in 0..L (checked before any run folder is made)."""
    depth = model_depth_hint(p.model)
    if isinstance(freeze, bool) or not isinstance(freeze, int) or freeze < 0 or (
            depth is not None and freeze > depth):
        span = f"0..{depth}" if depth is not None else ">= 0"
        raise ConfigError(f"freeze={freeze!r} is not valid for {p.model}: choose a depth in "
                          f"{span} (0 freezes nothing; k freezes the embeddings and k layers)")


def check_depths(p: Any) -> None:
    """``ablation_ks`` within the model's depth, when it is known without loading the model."""
    depth = model_depth_hint(p.model)
    if p.ablation_ks is not None and depth is not None:
        bad = [k for k in p.ablation_ks if not 0 <= k <= depth]
        if bad:
            raise bad_setting("ablation_ks", list(p.ablation_ks),
                       f"depths {bad} are outside 0..{depth} for {p.model}")
