"""PyTorch peer for bench/attention.bench.ts: times F.scaled_dot_product_attention
in bfloat16 on the shapes of the bf16 attention benches, the way transformers
calls it, and prints one JSON object {case: {"min_ms", "median_ms", "reps"}}.

  python torch_attention.py --threads N --cases '[{"name": ..., "T": 5476, "hq": 16, "hkv": 16, "d": 80,
                                                   "causal": false, "windows": [64, 64, ...] | null}, ...]'

Inputs are [T, H, D] tensors viewed as [1, H, T, D] (transformers' vision
attention: q.transpose(0, 1).unsqueeze(0)); `windows` splits the tokens into
consecutive blocks attended separately, one SDPA call each (transformers'
Qwen2.5-VL window attention with the SDPA backend); causal GQA uses
enable_gqa=True (transformers' sdpa path when the kv heads differ).
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def run_case(c, reps, min_s):
    T, hq, hkv, d = c["T"], c["hq"], c["hkv"], c["d"]
    g = torch.Generator().manual_seed(0)
    q = (torch.rand(T, hq, d, generator=g) * 2 - 1).to(torch.bfloat16)
    k = (torch.rand(T, hkv, d, generator=g) * 2 - 1).to(torch.bfloat16)
    v = (torch.rand(T, hkv, d, generator=g) * 2 - 1).to(torch.bfloat16)
    qv, kv, vv = (x.transpose(0, 1).unsqueeze(0) for x in (q, k, v))
    windows = c.get("windows")
    causal = bool(c.get("causal"))
    gqa = hq != hkv

    def once():
        with torch.inference_mode():
            if windows:
                splits = [torch.split(x, windows, dim=2) for x in (qv, kv, vv)]
                outs = [F.scaled_dot_product_attention(a, b, e, is_causal=causal) for a, b, e in zip(*splits)]
                return torch.cat(outs, dim=2)
            return F.scaled_dot_product_attention(qv, kv, vv, is_causal=causal, enable_gqa=gqa)

    for _ in range(2):
        once()
    times = []
    t_start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - t_start < min_s:
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > 20:
            break
    times.sort()
    return {"min_ms": times[0] * 1e3, "median_ms": times[len(times) // 2] * 1e3, "reps": len(times)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-s", type=float, default=0.5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = {c["name"]: run_case(c, a.reps, a.min_s) for c in json.loads(a.cases)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
