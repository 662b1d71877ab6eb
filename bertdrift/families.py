"""Encoder families: one place that says how each Hugging Face architecture is put together.

Every stage that reaches inside an encoder (word pooling, the fine-tuning loop's frozen-prefix
cache, freezing, layer replacement, the feature limit) asks this module instead of assuming
BERT's layout. A :class:`Family` records, for one architecture:

- where its embeddings and its transformer blocks live, and the *bottom extras*: weights that
  sit between the embeddings and the first block or that every block shares (ELECTRA's
  ``embeddings_project``, ALBERT's ``embedding_hidden_mapping_in``, DeBERTa-v2's relative
  position embeddings, their LayerNorm and the convolution after its first layer). They are
  frozen with the embeddings and reverted with layer 0;
- whether blocks share weights (ALBERT: ``num_hidden_groups`` groups, each run for several
  layers; freezing and replacement then work in whole groups, the *blocks* of this module);
- whether the encoder takes segment (token type) ids, whether its byte-level BPE tokenizer
  needs ``add_prefix_space`` for pre-split words, the offset its position table reserves
  (RoBERTa: ``padding_idx + 1``), its final norm (ModernBERT) and the word-start marker of its
  tokenizer (``Ġ`` byte-level BPE, ``▁`` SentencePiece), whose bare piece is never a word's
  pooled subword;
- how one block is called (the *runner*), so that the layers above a cached frozen prefix run
  exactly as the model's own ``forward`` runs them.

Unknown model types are treated as BERT-shaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bertdrift.errors import ModelError

WORD_START_MARKERS = ("Ġ", "▁")
"""Byte-level BPE (RoBERTa, ModernBERT) and SentencePiece (ALBERT, DeBERTa-v2) word starts."""


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    layers: str = "encoder.layer"
    """Path (from the bare encoder) of the ``ModuleList`` of blocks."""
    embeddings: str = "embeddings"
    bottom_extras: tuple[str, ...] = ()
    """Modules frozen with the embeddings and copied with layer 0 (absent ones are skipped)."""
    projections: tuple[str, ...] = ()
    """Modules applied, in order, to the embeddings' output before the first block."""
    shared_layers: bool = False
    final_norm: str | None = None
    token_types: bool = True
    embeddings_take_mask: bool = False
    prefix_space: bool = False
    position_offset: int = 0
    word_start_marker: str | None = None
    runner: str = "bert"


FAMILIES: tuple[Family, ...] = (
    Family("bert", ("bert",)),
    Family("roberta", ("roberta", "xlm-roberta", "camembert"), prefix_space=True,
           position_offset=2, word_start_marker="Ġ"),
    Family("distilbert", ("distilbert",), layers="transformer.layer", token_types=False),
    Family("albert", ("albert",), layers="encoder.albert_layer_groups",
           bottom_extras=("encoder.embedding_hidden_mapping_in",),
           projections=("encoder.embedding_hidden_mapping_in",), shared_layers=True,
           word_start_marker="▁", runner="albert"),
    Family("electra", ("electra",), bottom_extras=("embeddings_project",),
           projections=("embeddings_project",)),
    Family("deberta-v2", ("deberta-v2",),
           bottom_extras=("encoder.rel_embeddings", "encoder.LayerNorm", "encoder.conv"),
           embeddings_take_mask=True, word_start_marker="▁", runner="deberta"),
    Family("modernbert", ("modernbert",), layers="layers", final_norm="final_norm",
           token_types=False, prefix_space=True, word_start_marker="Ġ", runner="modernbert"),
)
_BY_TYPE = {t: f for f in FAMILIES for t in f.model_types}


def family_of(model_or_config: Any) -> Family:
    """The family of a model (bare, task-wrapped or ``TaskModel``), a config or a model type."""
    if isinstance(model_or_config, str):
        model_type = model_or_config
    else:
        config = getattr(model_or_config, "config", model_or_config)
        if not hasattr(config, "model_type") and hasattr(model_or_config, "encoder"):
            config = model_or_config.encoder.config
        model_type = str(getattr(config, "model_type", "bert"))
    return _BY_TYPE.get(model_type, FAMILIES[0])


def base_model(model: nn.Module) -> nn.Module:
    """The bare encoder inside a task model (``TaskModel.encoder``) or an ``*For*`` model."""
    if hasattr(model, "encoder") and hasattr(model, "head") and hasattr(model, "meta"):
        model = model.encoder
    return getattr(model, "base_model", model)


def _get(module: nn.Module, path: str) -> Any:
    obj: Any = module
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


# -- structure --------------------------------------------------------------------------------
def blocks(model: nn.Module) -> nn.ModuleList:
    """The weight blocks: the transformer layers, or ALBERT's shared layer groups."""
    base = base_model(model)
    fam = family_of(base)
    found = _get(base, fam.layers)
    if isinstance(found, nn.ModuleList):
        return found
    for path in ("encoder.layer", "encoder.layers", "layers", "transformer.layer"):
        found = _get(base, path)
        if isinstance(found, nn.ModuleList):
            return found
    raise ModelError(f"cannot find the transformer layers of {type(model).__name__} "
                     f"(model type {getattr(base.config, 'model_type', '?')!r}); "
                     "bertdrift.families lists the supported families")


def num_blocks(config: Any) -> int:
    """Number of weight blocks of a config (ALBERT: ``num_hidden_groups``)."""
    if family_of(config).shared_layers:
        return int(getattr(config, "num_hidden_groups", 1))
    return int(config.num_hidden_layers)


def embeddings(model: nn.Module) -> nn.Module:
    base = base_model(model)
    emb = _get(base, family_of(base).embeddings)
    if emb is None:
        raise ModelError(f"cannot find the embeddings of {type(model).__name__}")
    return emb


def bottom_extras(model: nn.Module) -> list[nn.Module]:
    """The family's extra bottom modules that this model has (see :class:`Family`)."""
    base = base_model(model)
    found = (_get(base, path) for path in family_of(base).bottom_extras)
    return [m for m in found if isinstance(m, nn.Module)]


def unused_modules(model: nn.Module) -> list[nn.Module]:
    """Modules a task head never reads: the pooler (heads read the last hidden states). They
    get no gradient, which several-process (DDP) training rejects unless they are frozen."""
    pooler = getattr(base_model(model), "pooler", None)
    return [pooler] if isinstance(pooler, nn.Module) else []


def extras_state(model: nn.Module) -> list[dict[str, torch.Tensor]]:
    """Copies of the weights that travel with layer 0 or the top layer (bottom extras, final
    norm), to restore with :func:`load_extras_state` after layers were swapped."""
    modules = [*bottom_extras(model), *filter(None, [final_norm(model)])]
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]


def load_extras_state(model: nn.Module, state: list[dict[str, torch.Tensor]]) -> None:
    modules = [*bottom_extras(model), *filter(None, [final_norm(model)])]
    with torch.no_grad():
        for module, saved in zip(modules, state, strict=True):
            module.load_state_dict(saved)


def final_norm(model: nn.Module) -> nn.Module | None:
    base = base_model(model)
    name = family_of(base).final_norm
    return _get(base, name) if name else None


def max_positions(config: Any) -> int:
    """Tokens one sequence may hold (RoBERTa's table reserves ``padding_idx + 1`` rows)."""
    fam = family_of(config)
    return int(getattr(config, "max_position_embeddings", 512)) - fam.position_offset


def uses_token_types(config: Any) -> bool:
    """Whether segment ids reach the model: its forward takes them and it has more than one."""
    return family_of(config).token_types and int(getattr(config, "type_vocab_size", 0)) > 1


def encoder_inputs(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments of the encoder's ``forward`` for a batch (token types only where
    the family uses them)."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if "token_type_ids" in batch and uses_token_types(base_model(model).config):
        inputs["token_type_ids"] = batch["token_type_ids"]
    return inputs


# -- running the blocks (the cached frozen-prefix path) ---------------------------------------
def embed(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The input of the first block: embeddings, then the family's projections."""
    base = base_model(model)
    fam = family_of(base)
    kwargs: dict[str, Any] = {"input_ids": batch["input_ids"]}
    if "token_type_ids" in batch and uses_token_types(base.config):
        kwargs["token_type_ids"] = batch["token_type_ids"]
    if fam.embeddings_take_mask:
        kwargs["mask"] = batch["attention_mask"]
    hidden = embeddings(base)(**kwargs)
    for path in fam.projections:
        proj = _get(base, path)
        if proj is not None:
            hidden = proj(hidden)
    return hidden


def _bidirectional(config: Any, hidden: torch.Tensor, mask: torch.Tensor, base: nn.Module):
    try:
        from transformers.masking_utils import create_bidirectional_mask
    except ImportError:  # transformers < 4.56
        return base.get_extended_attention_mask(mask, mask.shape, dtype=hidden.dtype)
    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask)


def _out(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value


def run_blocks(model: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, start: int,
               end: int) -> torch.Tensor:
    """Run blocks ``start..end-1`` on ``hidden`` (the output of block ``start - 1``, or of
    :func:`embed`) exactly as the model's ``forward`` does."""
    if start >= end:
        return hidden
    base = base_model(model)
    fam, config = family_of(base), base.config
    layers = blocks(base)
    if fam.runner == "deberta":
        enc = base.encoder
        attn = enc.get_attention_mask(mask)
        rel_pos = enc.get_rel_pos(hidden)
        rel = enc.get_rel_embedding()
        for i in range(start, end):
            out = _out(layers[i](hidden, attn, query_states=None, relative_pos=rel_pos,
                                 rel_embeddings=rel))
            if i == 0 and getattr(enc, "conv", None) is not None:
                out = enc.conv(hidden, out, mask)
            hidden = out
        return hidden
    if fam.runner == "modernbert":
        return _run_modernbert(base, layers, hidden, mask, start, end)
    attn = _bidirectional(config, hidden, mask, base)
    if fam.runner == "albert":
        n, g = int(config.num_hidden_layers), len(layers)
        for i in range(n):
            group = int(i / (n / g))
            if start <= group < end:
                hidden = _out(layers[group](hidden, attn))
        return hidden
    for layer in layers[start:end]:
        hidden = _out(layer(hidden, attn))
    return hidden


def _run_modernbert(base: nn.Module, layers: nn.ModuleList, hidden: torch.Tensor,
                    mask: torch.Tensor, start: int, end: int) -> torch.Tensor:
    from transformers.masking_utils import (
        create_bidirectional_mask,
        create_bidirectional_sliding_window_mask,
    )

    config = base.config
    if not all(hasattr(layer, "attention_type") for layer in layers):
        raise ModelError("the cached frozen prefix of ModernBERT needs transformers >= 5; "
                         "upgrade transformers or fine-tune with cache_frozen=False")
    kw = {"config": config, "inputs_embeds": hidden, "attention_mask": mask}
    masks = {"full_attention": create_bidirectional_mask(**kw),
             "sliding_attention": create_bidirectional_sliding_window_mask(**kw)}
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
    rotary = {t: base.rotary_emb(hidden, positions, t) for t in set(config.layer_types)}
    for layer in layers[start:end]:
        hidden = _out(layer(hidden, attention_mask=masks[layer.attention_type],
                            position_embeddings=rotary[layer.attention_type]))
    return hidden


def finish(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The encoder's output from the last block's: its final norm, where it has one."""
    norm = final_norm(model)
    return norm(hidden) if norm is not None else hidden


# -- tokenizers and word pooling --------------------------------------------------------------
def marker_ids(tokenizer: Any) -> set[int]:
    """Ids of vocabulary entries that are a bare word-start marker (``Ġ``, ``▁``)."""
    vocab = tokenizer.get_vocab()
    return {vocab[m] for m in WORD_START_MARKERS if m in vocab}


def word_positions(word_ids: Sequence[int | None], input_ids: Sequence[int], n_words: int,
                   markers: set[int]) -> list[list[int]]:
    """Token positions of each word, without a bare word-start marker when the word has other
    pieces (so ``:`` tokenised as ``▁``, ``:`` is represented by ``:``)."""
    out: list[list[int]] = [[] for _ in range(n_words)]
    for pos, w in enumerate(word_ids):
        if w is not None:
            out[w].append(pos)
    if markers:
        for w, positions in enumerate(out):
            kept = [p for p in positions if int(input_ids[p]) not in markers]
            if kept and len(kept) < len(positions):
                out[w] = kept
    return out


def empty_words(tokenizer: Any, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
    """Per sentence, the indices of words that tokenise to no piece at all."""
    out: list[list[int]] = []
    for start in range(0, len(sentences), 2048):
        block = [list(s) for s in sentences[start : start + 2048]]
        enc = tokenizer(block, is_split_into_words=True, add_special_tokens=False)
        for b, words in enumerate(block):
            seen = {w for w in enc.word_ids(b) if w is not None}
            out.append([i for i in range(len(words)) if i not in seen])
    return out


def replace_empty_words(tokenizer: Any, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """``sentences`` with every word that tokenises to nothing replaced by the unknown token,
    so each word keeps a vector and word indices stay aligned."""
    unk = tokenizer.unk_token or "?"
    out = [list(s) for s in sentences]
    for s, empties in enumerate(empty_words(tokenizer, out)):
        for i in empties:
            out[s][i] = unk
    return out


def _prefix_space_on(node: Any) -> bool:
    """Set ``add_prefix_space`` on every ByteLevel step of a pre-tokenizer spec; True if any."""
    if not isinstance(node, dict):
        return False
    changed = False
    if node.get("type") == "ByteLevel" and not node.get("add_prefix_space", False):
        node["add_prefix_space"] = True
        changed = True
    for child in node.get("pretokenizers", []) or []:
        changed = _prefix_space_on(child) or changed
    return changed


def ensure_prefix_space(tokenizer: Any) -> Any:
    """Make a byte-level BPE tokenizer mark each pre-split word as a word start (``Ġ``), as
    ``add_prefix_space=True`` does for RoBERTa, also for classes that ignore that argument."""
    import json

    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer
    spec = json.loads(backend.to_str())
    if _prefix_space_on(spec.get("pre_tokenizer")):
        tokenizer._tokenizer = Tokenizer.from_str(json.dumps(spec))
    if hasattr(tokenizer, "add_prefix_space"):
        tokenizer.add_prefix_space = True
    return tokenizer
