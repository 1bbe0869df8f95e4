"""PyTorch + transformers peer for bench/qwen_vl.bench.ts.

Loads the same Hub-layout checkpoint the TypeScript bench wrote, runs the
same inputs, and prints one JSON object with its timings:

  python torch_qwen.py --model DIR --inputs INPUTS.safetensors --spec SPEC.json [--dtype bfloat16|float32]

SPEC.json: {"grid_thw": [[t, h, w]], "warm_grid_thw": [[...]], "prompt_ids": [...], "decode_ids": [...]}
INPUTS.safetensors: pixel_values [N, 3*T*P*P] (the image), warm_pixel_values (a small one for warm-up).

Measured, each after a warm-up call that touches every weight:
- vision: the vision tower on the image (model.model.visual);
- prefill: the text prompt through the decoder with a fresh KV cache (logits of the last position only);
- decode: one token at a time from that cache, the tokens given (teacher forcing).
"""
import argparse
import json
import os
import sys
import time

import torch
from safetensors.torch import load_file
import transformers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prefill-runs", type=int, default=3, help="timed prefills after the warm-up; the best is reported")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    spec = json.load(open(a.spec))
    inputs = load_file(a.inputs)

    t0 = time.perf_counter()
    model = transformers.AutoModelForImageTextToText.from_pretrained(a.model, dtype=dtype)
    model.eval()
    load_s = time.perf_counter() - t0
    visual = model.model.visual

    def vision(px, grid):
        with torch.inference_mode():
            out = visual(px.to(dtype), grid_thw=torch.tensor(grid))
        return out

    vision(inputs["warm_pixel_values"], spec["warm_grid_thw"])
    t0 = time.perf_counter()
    vision(inputs["pixel_values"], spec["grid_thw"])
    vision_s = time.perf_counter() - t0

    prompt = torch.tensor([spec["prompt_ids"]])
    decode_ids = spec["decode_ids"]

    def prefill():
        cache = transformers.DynamicCache(config=model.config)
        with torch.inference_mode():
            out = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return out.past_key_values

    prefill()  # warm-up
    # Best of --prefill-runs timed prefills, as on our side.
    prefill_s = float("inf")
    for _ in range(a.prefill_runs):
        t0 = time.perf_counter()
        cache = prefill()
        prefill_s = min(prefill_s, time.perf_counter() - t0)

    t0 = time.perf_counter()
    with torch.inference_mode():
        for tok in decode_ids:
            out = model(input_ids=torch.tensor([[tok]]), past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
    decode_s = time.perf_counter() - t0

    print(json.dumps({
        "load_s": load_s,
        "vision_s": vision_s,
        "prefill_s": prefill_s,
        "prefill_tokens": len(spec["prompt_ids"]),
        "decode_s": decode_s,
        "decode_tokens": len(decode_ids),
        "dtype": a.dtype,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the bench prints the reason
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
