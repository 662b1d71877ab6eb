"""Activation-store benchmark on the packaged model and real EWT sentences.

Prints, side by side in one run:
 (a) store throughput (tokenise, forward, pool, write float16) / bare batched forward pass of the
     same model on the same length-sorted batches — target >= 0.9;
 (b) achieved linear-layer FLOP/s of the store / this machine's float32 matmul FLOP/s measured
     now — target >= 0.70;
 (c) store throughput / a loop that runs one sentence per forward pass (reported);
 (d) peak resident memory extracting N and 10*N sentences, each in a fresh child process —
     growth target < 10 %.

With ``--precision``, instead: float32 vs bf16-autocast extraction (the profile's
``precision="auto"`` on a CPU with native bf16) of the same sentences, alternating runs, the
time ratio and, per layer, the RSA and the smallest cosine between the two stores' vectors.

Usage: BERTDRIFT_DATA=../shared/data python benchmarks/extract.py [--n 1000] [--threads 2]
       BERTDRIFT_DATA=../shared/data python benchmarks/extract.py --precision [--repeat 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time

import numpy as np
import torch

from bertdrift import data
from bertdrift.features import extract_features
from bertdrift.models import load_encoder, load_tokenizer


def sentences(n: int) -> list[list[str]]:
    train = data.load_ud("train")
    reps = -(-n // len(train))
    toks = list(train["tokens"]) * reps
    return toks[:n]


def linear_params(model) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
               and "pooler" not in type(m).__name__.lower())


def matmul_flops(seconds: float = 3.0, size: int = 1024) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start)


def bare_forward(model, tok, sents, batch_size: int) -> tuple[float, int]:
    """The same length-sorted, dynamically padded batches, forward pass only."""
    lengths = [len(tok(s, is_split_into_words=True)["input_ids"]) for s in sents]
    order = np.argsort(-np.array(lengths), kind="stable")
    padded = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            batch = [sents[j] for j in order[i : i + batch_size]]
            enc = tok(batch, is_split_into_words=True, padding=True, return_tensors="pt")
            model(**enc, output_hidden_states=True)
            padded += enc["input_ids"].numel()
    return time.perf_counter() - start, padded


def one_by_one(model, tok, sents) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for s in sents:
            model(**tok([s], is_split_into_words=True, return_tensors="pt"),
                  output_hidden_states=True)
    return time.perf_counter() - start


def _child_peak(n: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    model, tok = load_encoder(), load_tokenizer()
    sents = sentences(n)
    with tempfile.TemporaryDirectory() as d:
        extract_features(model, tok, sents, cache_root=d, progress=False)
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_rss_mb(n: int, threads: int) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_peak, args=(n, threads, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return float(value)


def precision_ab(model, tok, sents, batch_size: int, repeat: int) -> None:
    """float32 vs bf16 autocast stores of the same sentences: time ratio and agreement."""
    from bertdrift.similarity import rsa

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    arrays = {}
    for _ in range(repeat):
        for name in ("fp32", "bf16"):  # alternating, so a load change hits both
            with tempfile.TemporaryDirectory() as d:
                start = time.perf_counter()
                fs = extract_features(model, tok, sents, batch_size=batch_size, cache_root=d,
                                      progress=False, precision=name)
                times[name].append(time.perf_counter() - start)
                arrays[name] = np.asarray(fs.array, dtype=np.float32)
    t32, t16 = min(times["fp32"]), min(times["bf16"])
    print(f"float32 {t32:.1f} s, bf16 autocast {t16:.1f} s (best of {repeat}) -> "
          f"{t32 / t16:.2f}x")
    idx = np.random.default_rng(0).choice(len(arrays["fp32"]), min(3000, len(arrays["fp32"])),
                                          replace=False)
    for layer in range(arrays["fp32"].shape[1]):
        a, b = arrays["fp32"][idx, layer], arrays["bf16"][idx, layer]
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
        print(f"  layer {layer}: RSA(fp32, bf16) {float(rsa(a, b)):.5f}, "
              f"smallest cosine {cos.min():.5f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000, help="sentences for (a)-(c)")
    parser.add_argument("--n-single", type=int, default=300, help="sentences for (c)")
    parser.add_argument("--n-memory", type=int, default=500, help="N for (d)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", action="store_true",
                        help="only compare float32 with bf16-autocast extraction")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load_encoder(), load_tokenizer()
    sents = sentences(args.n)
    n_words = sum(map(len, sents))
    print(f"model: all-MiniLM-L6-v2 (packaged) · {args.n} EWT train sentences, {n_words} words"
          f" · {torch.get_num_threads()} threads")
    if args.precision:
        precision_ab(model, tok, sents, args.batch_size, args.repeat)
        return

    bare_forward(model, tok, sents[:64], args.batch_size)  # warm-up
    t_bare, padded = bare_forward(model, tok, sents, args.batch_size)
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        extract_features(model, tok, sents, batch_size=args.batch_size, cache_root=d,
                         progress=False)
        t_store = time.perf_counter() - start
    print(f"(a) store {n_words / t_store:8.0f} words/s vs bare forward {n_words / t_bare:8.0f}"
          f" words/s -> ratio {t_bare / t_store:.2f} (target >= 0.9)")

    peak = matmul_flops()
    flops = 2 * linear_params(model) * padded
    achieved = flops / t_store
    print(f"(b) store {achieved / 1e9:6.1f} GFLOP/s (linear layers, {padded} padded tokens) vs "
          f"float32 matmul {peak / 1e9:6.1f} GFLOP/s -> {achieved / peak:.0%} (target >= 70%);"
          f" bare forward {flops / t_bare / peak:.0%}")

    sub = sents[: args.n_single]
    t_single = one_by_one(model, tok, sub)
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        extract_features(model, tok, sub, batch_size=args.batch_size, cache_root=d,
                         progress=False)
        t_sub = time.perf_counter() - start
    print(f"(c) store vs one sentence per forward pass on {len(sub)} sentences: "
          f"{t_single / t_sub:.2f}x faster")

    small = peak_rss_mb(args.n_memory, args.threads)
    large = peak_rss_mb(10 * args.n_memory, args.threads)
    print(f"(d) peak RSS: {args.n_memory} sentences {small:.0f} MB, {10 * args.n_memory} "
          f"sentences {large:.0f} MB -> growth {large / small - 1:+.1%} (target < 10%)")


if __name__ == "__main__":
    main()
