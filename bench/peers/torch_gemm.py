"""PyTorch CPU bf16 linear (oneDNN, AMX where available) as the peer of
bench/gemm_bf16.bench.ts: y = F.linear(x, w) with x [M, K] and w [N, K] both
bfloat16 (bf16 output), timed best-of-N after warm-up.

Usage: torch_gemm.py --threads T --shapes M,K,N[;M,K,N...] [--min-ms 300] [--reps 5]
Prints one JSON object per shape: {"M","K","N","threads","best_s","median_s","gflops"}.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-ms", type=float, default=300.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for spec in args.shapes.split(";"):
        M, K, N = (int(v) for v in spec.split(","))
        x = torch.randn(M, K).to(torch.bfloat16)
        w = torch.randn(N, K).to(torch.bfloat16)
        with torch.inference_mode():
            for _ in range(3):
                F.linear(x, w)
            samples = []
            start = time.perf_counter()
            while len(samples) < args.reps or (time.perf_counter() - start) * 1e3 < args.min_ms:
                t0 = time.perf_counter()
                F.linear(x, w)
                samples.append(time.perf_counter() - t0)
                if (time.perf_counter() - start) > 5.0 and len(samples) >= 3:
                    break
        samples.sort()
        best = samples[0]
        print(json.dumps({"M": M, "K": K, "N": N, "threads": args.threads, "best_s": best,
                          "median_s": samples[len(samples) // 2], "gflops": 2.0 * M * N * K / best / 1e9}),
              flush=True)


if __name__ == "__main__":
    main()
