"""The random-encoder floor: an encoder of the profile's architecture with random weights.

A probe on a randomly initialised encoder sees word identity and position (through random
embeddings mixed by random layers) but nothing learned from text, so its score is the standard
floor for what a probe can learn by itself (Tenney et al. 2019's "random ELMo"; Hewitt &
Manning's random baselines). The checkpoint is saved once, with the model's tokenizer, as a local
folder in the cache, so the activation store keys its features by its weights like any model.
"""

from __future__ import annotations

from pathlib import Path

from bertdrift.config import Profile
from bertdrift.errors import ModelError
from bertdrift.io import stable_hash
from bertdrift.models import load_tokenizer, resolve_model


def random_encoder(profile: Profile, seed: int = 0) -> Path:
    """Folder of a randomly initialised ``AutoModel.from_config(<profile.model's config>)``
    (weights drawn with ``torch.manual_seed(seed)``) and the model's tokenizer; created once
    under ``<cache>/models/random-<key>/`` and reused."""
    import torch
    from transformers import AutoConfig, AutoModel

    source = resolve_model(profile.model)
    folder = profile.cache_path / "models" / f"random-{stable_hash(source, seed)[:16]}"
    if (folder / "config.json").exists():
        return folder
    try:
        config = AutoConfig.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001 - turned into one clear error
        raise ModelError(f"cannot read the config of {source!r} to build the random encoder: "
                         f"{exc}; check the profile's model") from exc
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = AutoModel.from_config(config)
    finally:
        torch.random.set_rng_state(state)
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    load_tokenizer(source).save_pretrained(tmp)
    tmp.replace(folder)  # atomic: a half-written folder is never found under its final name
    return folder
