/**
 * One training step of a 2-layer MLP (x [256, 1024] -> 4096 -> 1024, biases)
 * against its forward pass: forward + backward to every parameter (no
 * optimizer update). The step costs ~3x the forward in FLOPs (two GEMMs per
 * layer backward), so the target is step/forward <= 3. Uses relu between the
 * layers when the elementwise module exports it, else linear+linear.
 */
import * as T from '../src/tensor/index.ts';
import { linear } from '../src/tensor/ops/matmul.ts';
import type { Bench } from './harness.ts';

type Unary = (x: T.Tensor) => T.Tensor;

const mlpStep: Bench = {
  name: 'mlp_2layer_step',
  async run(ctx) {
    const name = 'mlp_2layer_step';
    const B = 256, D = 1024, H = 4096;
    const act = (T as unknown as Record<string, unknown>).relu as Unary | undefined;
    if (!act) ctx.note(`${name}: no relu export yet; timing linear+linear`);
    const param = (shape: number[], scale: number): T.Tensor => {
      const p = T.keep(T.full(shape, scale));
      p.requiresGrad = true;
      return p;
    };
    const w1 = param([H, D], 0.01), b1 = param([H], 0.1), w2 = param([D, H], 0.01), b2 = param([D], 0.1);
    const params = [w1, b1, w2, b2];
    const x = T.full([B, D], 0.5);
    const forward = (): T.Tensor => {
      const h = linear(x, w1, b1);
      return linear(act ? act(h) : h, w2, b2);
    };
    const seed = T.ones([B, D]);
    const res = [];
    try {
      for (const t of [...new Set([1, ctx.limits.threads])]) {
        const prev = T.numThreads();
        T.setNumThreads(t);
        try {
          const fwd = ctx.time(() => T.noGrad(() => T.tidy(() => void forward())), { reps: 7, minMs: 300 });
          const step = ctx.time(() => {
            T.tidy(() => T.backward(forward(), { grad: seed }));
            for (const p of params) {
              p.grad?.dispose();
              p.grad = null;
            }
          }, { reps: 7, minMs: 300 });
          const flops = 2 * B * (D * H + H * D);
          res.push(ctx.result(name, `forward_ms_${t}t`, fwd.median * 1e3, 'ms'));
          res.push(ctx.result(name, `forward_gflops_${t}t`, flops / fwd.median / 1e9, 'GFLOP/s', t === 1 ? ctx.limits.fmaPeak1 : ctx.limits.fmaPeakAll, `fma_peak_${t}t`));
          res.push(ctx.result(name, `step_ms_${t}t`, step.median * 1e3, 'ms'));
          res.push(ctx.result(name, `step_over_forward_${t}t`, step.median / fwd.median, 'x', 3, 'target 3x'));
        } finally {
          T.setNumThreads(prev);
        }
      }
    } finally {
      for (const z of [...params, x, seed]) z.dispose();
    }
    return res;
  },
};

export const benches: Bench[] = [mlpStep];
