"""Several processes: ``accelerate launch`` runs the training loop in two CPU processes (gloo),
each on half of every epoch's batches, and only the main process writes the run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _family_fixtures import build_family

from bertdrift.io import read_json

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available())
    or sys.platform == "win32", reason="needs torch.distributed with the gloo backend")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_accelerate_launch_two_cpu_processes(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the launcher would use it, not two CPU processes")
    model = build_family("bert", tmp_path / "bert")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    # --multi_gpu selects accelerate's torchrun launcher; on a machine without GPUs each
    # process's Accelerator(cpu=True) then joins a gloo process group (MULTI_CPU)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           str(root / "tests" / "_ddp_script.py"), str(model), str(tmp_path / "out")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [(tmp_path / "out" / f"rank-{r}.txt").read_text() for r in (0, 1)]
    # 24 examples in batches of 4: 6 batches per epoch, 3 per process, for 2 epochs
    assert lines == ["rank=0 world=2 backend=gloo steps=6",
                     "rank=1 world=2 backend=gloo steps=6"], done.stdout[-2000:]
    result = read_json(tmp_path / "out" / "run" / "result.json")
    assert [h["steps"] for h in result["history"]] == [3, 6]
    assert (tmp_path / "out" / "run" / "encoder" / "config.json").exists()
