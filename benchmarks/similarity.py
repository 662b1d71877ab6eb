"""Benchmark: bertdrift RSA vs rsatoolbox on real EWT tokens, every hidden-state layer.

Two comparisons on ``--tokens`` word vectors (first subword) of UD EWT dev sentences:

* paired: layer l of model A vs layer l of model B (A = the packaged MiniLM; B = ``--tuned``
  encoder directory if given, else the same model with mean-subword pooling, so the two
  representations differ);
* map: every layer of A vs every layer of B (7 x 7 for MiniLM), as chapter 4's maps do.

Kernel: rsatoolbox's correlation distance (``kernel="correlation"``), Pearson between RDMs. Both
sides get the same float64 inputs and the same number of BLAS threads (``--threads``);
rsatoolbox's time includes building its RDMs, ours the whole computation from activations. Prints the time
ratio and the largest absolute difference. Run:
``HF_HUB_OFFLINE=1 BERTDRIFT_DATA=/work/shared/data python benchmarks/similarity.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import calc_rdm, compare
from threadpoolctl import threadpool_limits

from bertdrift import similarity as sim
from bertdrift.data import load_ud
from bertdrift.features import extract_features
from bertdrift.models import load_encoder, load_tokenizer


def ewt_layers(n_tokens: int, model: str | None, pooling: str) -> np.ndarray:
    """``(L+1, n_tokens, d)`` float64 word vectors of the first EWT dev sentences."""
    ds = load_ud("dev")
    sentences, total = [], 0
    for tokens in ds["tokens"]:
        sentences.append(list(tokens))
        total += len(tokens)
        if total >= n_tokens:
            break
    enc, tok = load_encoder(model), load_tokenizer(model)
    fs = extract_features(enc, tok, sentences, pooling=pooling, progress=False)
    arr = np.asarray(fs.array[:n_tokens], dtype=np.float64)
    return np.ascontiguousarray(arr.transpose(1, 0, 2))


def rsatoolbox_rsa(a: np.ndarray, b: np.ndarray, paired: bool) -> np.ndarray:
    rdms_a = calc_rdm([Dataset(layer) for layer in a], method="correlation")
    rdms_b = calc_rdm([Dataset(layer) for layer in b], method="correlation")
    if paired:
        return np.array([compare(rdms_a[i], rdms_b[i], method="corr")[0, 0]
                         for i in range(len(a))])
    return compare(rdms_a, rdms_b, method="corr")


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        if isinstance(out, torch.Tensor):
            out = out.cpu()  # waits for the device
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--tuned", default=None, help="fine-tuned encoder directory (model B)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="where bertdrift computes (cpu/cuda)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS (rsatoolbox) gets the same number of threads
    a = ewt_layers(args.tokens, None, "first")
    b = ewt_layers(args.tokens, args.tuned, "first" if args.tuned else "mean")
    print(f"inputs: {a.shape[1]} EWT dev tokens x {a.shape[0]} layers x {a.shape[2]} dims "
          f"(B = {args.tuned or 'same model, mean pooling'}); {args.threads} threads, bertdrift on {args.device}")
    ta, tb = torch.from_numpy(a).to(args.device), torch.from_numpy(b).to(args.device)
    for name, paired in (("paired per-layer", True), ("layer x layer map", False)):
        fn, other = (sim.rsa, tb) if paired else (sim.rsa_map, tb)
        t_ours, ours = timed(lambda fn=fn, other=other: fn(ta, other, kernel="correlation"),
                             args.repeat)
        t_ref, ref = timed(lambda paired=paired: rsatoolbox_rsa(a, b, paired), 1)
        diff = float(np.max(np.abs(np.asarray(ours) - np.asarray(ref))))
        print(f"{name:>18}: bertdrift {t_ours:.3f} s, rsatoolbox {t_ref:.2f} s, "
              f"ratio {t_ref / t_ours:.0f}x, max |diff| {diff:.2e}")
        if paired:
            print("   per-layer RSA:", " ".join(f"{v:.4f}" for v in np.asarray(ours)))


if __name__ == "__main__":
    main()
