"""Run by tests/test_multiprocess.py under ``accelerate launch``: fine-tune a tiny model on
synthetic MNLI data; every process writes its rank, world size and backend to
``<out>/rank-<r>.txt``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _finetune_fixtures import mnli_data  # noqa: E402

from bertdrift import get_profile  # noqa: E402
from bertdrift.finetune import train_task  # noqa: E402
from bertdrift.models import load_encoder, load_tokenizer  # noqa: E402


def main(model: str, out: str) -> None:
    import torch.distributed as dist

    P = get_profile("tiny", device="cpu", cache_dir=str(Path(out) / "cache"), mnli_epochs=2,
                    mnli_batch_size=4, mnli_max_length=32, mnli_lr=1e-3, mnli_train_size=24,
                    mnli_eval_size=8)
    run = train_task("mnli", P, Path(out) / "run", data=mnli_data(n_train=24, n_eval=8),
                     encoder=load_encoder(model), tokenizer=load_tokenizer(model),
                     progress=False)
    # each rank writes its own file: printed lines of two processes can interleave
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"rank-{dist.get_rank()}.txt").write_text(
        f"rank={dist.get_rank()} world={dist.get_world_size()} backend={dist.get_backend()} "
        f"steps={run.history[-1]['steps']}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
