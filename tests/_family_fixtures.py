"""Tiny randomly initialised encoders of seven Hugging Face families, each saved with a small
tokenizer trained here (``tokenizers``), as a checkpoint directory: no Hub access."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

FAMILY_NAMES = ("bert", "roberta", "distilbert", "albert", "electra", "deberta-v2",
                "modernbert")

_WORDS = ("the cat dog sat on mat ran to park a bird flew over house red blue big small is was "
          "not who what where did forces of nature people said that they would go home today "
          "and then we saw many things in town").split()


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Sentences over a small vocabulary; colons and commas always follow a word directly, so
    no ``Ġ:`` / ``▁:`` piece is learned and a pre-split ``:`` needs a bare marker piece."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 12))]
        text = " ".join(words)
        k = rng.randrange(len(text))
        out.append(text[:k].rstrip() + rng.choice([":", ",", "."]) + " " + text[k:].lstrip())
    return out


def _wordpiece(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=150,
                                                             special_tokens=specials))
    return tok, dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                     sep_token="[SEP]", mask_token="[MASK]"), ("[CLS]", "[SEP]")


def _bytelevel(texts: list[str], roberta: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    if roberta:
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        names = dict(bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
                     pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
        ends = ("<s>", "</s>")
    else:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                     sep_token="[SEP]", mask_token="[MASK]")
        ends = ("[CLS]", "[SEP]")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok, names, ends


def _sentencepiece(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=150,
                                                           special_tokens=specials,
                                                           unk_token="<unk>"))
    return tok, dict(pad_token="<pad>", unk_token="<unk>", cls_token="[CLS]", sep_token="[SEP]",
                     mask_token="[MASK]"), ("[CLS]", "[SEP]")


_TOKENIZER_CLASS = {"bert": "BertTokenizer", "roberta": "RobertaTokenizer",
                    "distilbert": "DistilBertTokenizer", "albert": "AlbertTokenizer",
                    "electra": "ElectraTokenizer", "deberta-v2": "DebertaV2Tokenizer",
                    "modernbert": "PreTrainedTokenizerFast"}


def train_tokenizer(family: str, texts: list[str] | None = None):
    """A fast tokenizer of the kind ``family`` ships with, trained on ``texts``."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    texts = texts if texts is not None else corpus()
    if family in ("bert", "distilbert", "electra"):
        tok, names, (cls, sep) = _wordpiece(texts)
    elif family in ("roberta", "modernbert"):
        tok, names, (cls, sep) = _bytelevel(texts, roberta=family == "roberta")
    else:
        tok, names, (cls, sep) = _sentencepiece(texts)
    ids = {t: tok.token_to_id(t) for t in (cls, sep)}
    if family == "roberta":
        tok.post_processor = processors.RobertaProcessing((sep, ids[sep]), (cls, ids[cls]),
                                                          trim_offsets=True)
    else:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    extra = {}
    if family in ("distilbert", "modernbert", "roberta"):
        extra["model_input_names"] = ["input_ids", "attention_mask"]
    return PreTrainedTokenizerFast(tokenizer_object=tok, **names, **extra)


def family_config(family: str, vocab_size: int, pad_id: int, max_positions: int = 128):
    """A 2-layer, 32-wide config of ``family``."""
    import transformers as tf

    common = dict(vocab_size=vocab_size, pad_token_id=pad_id)
    if family == "distilbert":
        return tf.DistilBertConfig(n_layers=2, dim=32, n_heads=2, hidden_dim=64,
                                   max_position_embeddings=max_positions, **common)
    if family == "modernbert":
        return tf.ModernBertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=max_positions,
                                   global_attn_every_n_layers=2, local_attention=8,
                                   cls_token_id=2, sep_token_id=3, bos_token_id=2,
                                   eos_token_id=3, **common)
    sizes = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=max_positions)
    if family == "bert":
        return tf.BertConfig(**sizes, **common)
    if family == "roberta":
        sizes["max_position_embeddings"] = max_positions + 2
        return tf.RobertaConfig(**sizes, type_vocab_size=1, **common)
    if family == "albert":
        return tf.AlbertConfig(**sizes, embedding_size=16, num_hidden_groups=1, **common)
    if family == "electra":
        return tf.ElectraConfig(**sizes, embedding_size=16, **common)
    if family == "deberta-v2":
        return tf.DebertaV2Config(**sizes, relative_attention=True, position_buckets=16,
                                  max_relative_positions=32, norm_rel_ebd="layer_norm",
                                  pos_att_type=["p2c", "c2p"], position_biased_input=False,
                                  type_vocab_size=0, conv_kernel_size=3, **common)
    raise ValueError(family)


def build_family(family: str, folder: Path, *, seed: int = 0, max_positions: int = 128) -> Path:
    """Save a tiny random ``family`` encoder with its trained tokenizer into ``folder``; the
    tokenizer config names the family's tokenizer class, as a Hub checkpoint would."""
    from transformers import AutoModel

    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(family)
    config = family_config(family, len(tok), tok.pad_token_id, max_positions)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    cfg_file = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["tokenizer_class"] = _TOKENIZER_CLASS[family]
    cfg_file.write_text(json.dumps(cfg))
    return folder
