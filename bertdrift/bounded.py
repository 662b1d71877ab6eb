"""A bounded run of a profile: its recipes at full sequence lengths, a few steps each.

``bounded_profile("paper", max_steps=2)`` keeps every recipe of the ``paper`` profile (learning
rates, batch sizes, sequence lengths, document stride, epochs and schedules) and caps what a
bounded run needs: each fine-tuning run and probe stops after ``max_steps`` optimizer steps
(``Profile.max_steps``), each task trains on the ``max_steps`` batches it will see and
evaluates on ``eval_batches`` batches, and the probes on as many sentences. So the paper's code
path, shapes and memory are exercised on any machine, the CPU included, in seconds to minutes;
``scripts/gpu_check.sh`` uses it to time the paper profile on a GPU. Its results are cached
under their own keys, never mistaken for a full run's.
"""

from __future__ import annotations

from typing import Any

from bertdrift.config import TASKS, Profile, get_profile


def bounded_profile(name: str | Profile = "paper", *, max_steps: int = 2,
                    eval_batches: int = 1, **overrides: Any) -> Profile:
    """``name`` (with ``overrides``) bounded to ``max_steps`` steps per run (see module)."""
    base = get_profile(name, **overrides)
    changes: dict[str, Any] = {"max_steps": max_steps}
    for task in TASKS:
        r = base.recipe(task)
        train, evals = max_steps * r.batch_size, eval_batches * r.batch_size
        changes[f"{task}_train_size"] = train if r.train_size is None else min(train,
                                                                               r.train_size)
        changes[f"{task}_eval_size"] = evals if r.eval_size is None else min(evals, r.eval_size)
    sentences = max_steps * base.probe_batch_size
    changes["probe_train_size"] = (sentences if base.probe_train_size is None
                                   else min(sentences, base.probe_train_size))
    changes["probe_eval_size"] = (base.probe_batch_size if base.probe_eval_size is None
                                  else min(base.probe_batch_size, base.probe_eval_size))
    changes["probe_eval_targets"] = None
    changes["ablation_eval_size"] = max(changes[f"{t}_eval_size"] for t in TASKS)
    return get_profile(base, **changes)
