/**
 * Mixture-of-experts feed-forward: a router picks k experts per token, each
 * expert runs only on the tokens routed to it (gather → run → scatter back),
 * and the outputs are summed with the router's weights. Never dense: an expert
 * no token chose does no work at all.
 *
 * Two router families behind one interface (docs: open-models.md §7–8):
 * - 'softmax' (Qwen3-MoE / Qwen3-VL-MoE): p = softmax(logits); top-k of p;
 *   weights renormalised to sum to one when `normTopkProb`.
 * - 'sigmoid' (DeepSeek-V3 / Kimi-VL): s = sigmoid(logits); selection on
 *   s + correction bias, limited to the `topkGroup` best of `nGroup` expert
 *   groups (group score = sum of its two best biased scores; other groups'
 *   scores set to exactly 0.0 as the reference does); weights are the
 *   *unbiased* s of the chosen experts, renormalised when `normTopkProb`.
 * Both multiply the weights by `routedScalingFactor` (1 for Qwen).
 *
 * Experts are stored one module per expert (`experts.{e}.{gate,up,down}_proj`,
 * the DeepSeek checkpoint layout) rather than stacked [E, …] tensors: taking an
 * expert's slice of a stacked parameter would, in our autograd, materialise a
 * full-size gradient per expert. Loaders split Hub-stacked tensors per expert.
 */
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { Tensor, tensor, empty, zeros, ones, noGrad, tidy, copyInto, uniform_, linear } from '../tensor/index.ts';
import { reshape, unsqueeze, cat, narrow } from '../tensor/ops/view.ts';
import { add, mul, div, addScalar, mulScalar, sigmoid, square } from '../tensor/ops/elementwise.ts';
import { swiglu } from '../tensor/ops/activation.ts';
import { linearSwiGLU } from '../tensor/ops/linear_fused.ts';
import { needsGrad } from '../tensor/autograd.ts';
import { sum, mean, logsumexp } from '../tensor/ops/reduce.ts';
import { softmax } from '../tensor/ops/softmax.ts';
import { indexSelect, indexAdd, gather, scatterAdd, topk, moeRoute } from '../tensor/ops/indexing.ts';
import { groupedLinear, groupedSwiGLU } from '../tensor/ops/grouped.ts';

type FloatDType = 'float32' | 'float64';

export interface SwiGLULinears {
  gateProj: Linear;
  upProj: Linear;
  downProj: Linear;
}

/** LLaMA/Qwen gated MLP: down(silu(gate(x)) ⊙ up(x)), no biases. */
export class SwiGLU extends Module {
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;

  /** `opts.linears`: existing projections (e.g. around loaded weights) instead of new random ones. */
  constructor(hidden: number, intermediate: number, opts: { dtype?: FloatDType; linears?: SwiGLULinears } = {}) {
    super();
    const l = opts.linears;
    if (l) {
      const fits = (lin: Linear, inF: number, outF: number): boolean => lin.inFeatures === inF && lin.outFeatures === outF;
      if (!fits(l.gateProj, hidden, intermediate) || !fits(l.upProj, hidden, intermediate) || !fits(l.downProj, intermediate, hidden)) {
        const dims = (lin: Linear): string => `${lin.inFeatures} → ${lin.outFeatures}`;
        throw new RangeError(`SwiGLU(${hidden}, ${intermediate}): projections gate ${dims(l.gateProj)}, up ${dims(l.upProj)}, down ${dims(l.downProj)} `
          + `must be ${hidden} → ${intermediate}, ${hidden} → ${intermediate}, ${intermediate} → ${hidden}`);
      }
    }
    this.gateProj = this.module('gate_proj', l?.gateProj ?? new Linear(hidden, intermediate, { bias: false, dtype: opts.dtype }));
    this.upProj = this.module('up_proj', l?.upProj ?? new Linear(hidden, intermediate, { bias: false, dtype: opts.dtype }));
    this.downProj = this.module('down_proj', l?.downProj ?? new Linear(intermediate, hidden, { bias: false, dtype: opts.dtype }));
  }

  /** A SwiGLU from existing gate/up [I, H] and down [H, I] projections. */
  static fromLinears(gateProj: Linear, upProj: Linear, downProj: Linear): SwiGLU {
    return new SwiGLU(gateProj.inFeatures, gateProj.outFeatures, { linears: { gateProj, upProj, downProj } });
  }

  forward(x: Tensor): Tensor {
    const g = this.gateProj, u = this.upProj;
    // Plain weights of one dtype: the gate and up products fused with the SwiGLU (linearSwiGLU composes
    // the same ops itself when a gradient is wanted).
    if (!g.quantized && !u.quantized && g.weight.dtype === u.weight.dtype) {
      const h = linearSwiGLU(x, g.weight, u.weight, g.bias, u.bias);
      const out = this.downProj.forward(h);
      if (!needsGrad(out)) h.dispose();  // no graph holds it
      return out;
    }
    return this.downProj.forward(swiglu(g.forward(x), u.forward(x)));
  }
}

export type RouterScoring = 'softmax' | 'sigmoid';

export interface RouterOptions {
  numExperts: number;
  topK: number;
  scoring: RouterScoring;
  normTopkProb: boolean;
  /** Sigmoid family: expert groups and groups kept per token (1/1 = no group limit). */
  nGroup?: number;
  topkGroup?: number;
  routedScalingFactor?: number;
  dtype?: FloatDType;
}

export interface Routing {
  /** Router logits [T, E] (the z-loss input). */
  logits: Tensor;
  /** Routing probabilities [T, E] for the balance loss: softmax, or sigmoid scores normalised per token. */
  probs: Tensor;
  /** Combine weights of the chosen experts [T, k] (differentiable). */
  weights: Tensor;
  /** Chosen experts [T, k], int32 (no gradient). */
  experts: Tensor;
}

/** Existing router tensors (see Router's constructor). */
export interface RouterTensors {
  weight: Tensor;
  eScoreCorrectionBias?: Tensor | null;
}

/** Scores tokens against experts and picks the top k (see the file comment for both rules). */
export class Router extends Module {
  readonly weight: Tensor;
  /** Sigmoid family only: added to the scores for selection, not for the weights. Not trained by gradient. */
  readonly eScoreCorrectionBias: Tensor | null;
  readonly numExperts: number;
  readonly topK: number;
  readonly scoring: RouterScoring;
  readonly normTopkProb: boolean;
  readonly nGroup: number;
  readonly topkGroup: number;
  readonly routedScalingFactor: number;

  /** `tensors`: an existing weight [E, hidden] (and sigmoid correction bias [E]) used as given instead of new ones; frozen. */
  constructor(readonly hidden: number, opts: RouterOptions, tensors?: RouterTensors) {
    super();
    this.numExperts = opts.numExperts;
    this.topK = opts.topK;
    this.scoring = opts.scoring;
    this.normTopkProb = opts.normTopkProb;
    this.nGroup = opts.nGroup ?? 1;
    this.topkGroup = opts.topkGroup ?? 1;
    this.routedScalingFactor = opts.routedScalingFactor ?? 1;
    if (this.topK > this.numExperts) throw new RangeError(`Router: topK ${this.topK} > numExperts ${this.numExperts}`);
    if (this.numExperts % this.nGroup !== 0) throw new RangeError(`Router: nGroup ${this.nGroup} does not divide numExperts ${this.numExperts}`);
    if (tensors) {
      const w = tensors.weight, b = tensors.eScoreCorrectionBias;
      if (w.ndim !== 2 || w.shape[0] !== this.numExperts || w.shape[1] !== hidden) {
        throw new RangeError(`Router: weight has shape [${w.shape}], expected [${this.numExperts}, ${hidden}] (numExperts, hidden)`);
      }
      if (b && (b.ndim !== 1 || b.shape[0] !== this.numExperts)) throw new RangeError(`Router: e_score_correction_bias has shape [${b.shape}], expected [${this.numExperts}]`);
      if (this.scoring === 'sigmoid' && !b) throw new TypeError('Router: the sigmoid router needs e_score_correction_bias');
      if (this.scoring === 'softmax' && b) throw new TypeError('Router: the softmax router has no e_score_correction_bias');
      this.weight = this.param('weight', w, false);
      this.eScoreCorrectionBias = b ? this.param('e_score_correction_bias', b, false) : null;
      return;
    }
    const bound = 1 / Math.sqrt(hidden); // the init of a bias-free Linear(hidden → E)
    this.weight = this.param('weight', uniform_(empty([this.numExperts, hidden], opts.dtype ?? 'float32'), -bound, bound));
    this.eScoreCorrectionBias = this.scoring === 'sigmoid'
      ? this.param('e_score_correction_bias', zeros([this.numExperts], opts.dtype ?? 'float32'), false)
      : null;
  }

  /** A router around an existing weight [E, hidden] (E = numExperts); the sigmoid family also takes its correction bias [E]. */
  static fromTensors(weight: Tensor, opts: Omit<RouterOptions, 'numExperts' | 'dtype'>, eScoreCorrectionBias: Tensor | null = null): Router {
    if (weight.ndim !== 2) throw new RangeError(`Router.fromTensors: weight must be [numExperts, hidden], got [${weight.shape}]`);
    return new Router(weight.shape[1]!, { ...opts, numExperts: weight.shape[0]! }, { weight, eScoreCorrectionBias });
  }

  forward(x: Tensor): Routing {
    const logits = linear(x, this.weight);                              // [T, E]
    return this.scoring === 'softmax' ? this.routeSoftmax(logits) : this.routeSigmoid(logits);
  }

  private routeSoftmax(logits: Tensor): Routing {
    const probs = softmax(logits, -1);                                  // [T, E]
    const top = topk(probs, this.topK);                                  // [T, k]
    let weights = top.values;
    if (this.normTopkProb) weights = div(weights, sum(weights, -1, true));
    if (this.routedScalingFactor !== 1) weights = mulScalar(weights, this.routedScalingFactor);
    return { logits, probs, weights, experts: top.indices };
  }

  private routeSigmoid(logits: Tensor): Routing {
    const scores = sigmoid(logits);                                      // [T, E]
    const experts = noGrad(() => this.selectGroupLimited(scores));       // selection is not differentiable
    let weights = gather(scores, 1, experts);                            // unbiased scores of the chosen experts
    if (this.normTopkProb) weights = div(weights, addScalar(sum(weights, -1, true), 1e-20));
    if (this.routedScalingFactor !== 1) weights = mulScalar(weights, this.routedScalingFactor);
    const probs = div(scores, sum(scores, -1, true));
    return { logits, probs, weights, experts };
  }

  /** top-k of (scores + bias), restricted to the best `topkGroup` groups; int32 [T, k]. */
  private selectGroupLimited(scores: Tensor): Tensor {
    return tidy(() => {
      const T = scores.shape[0];
      let biased = add(scores, this.eScoreCorrectionBias!);              // [T, E]
      if (this.nGroup > 1) {
        const perGroup = this.numExperts / this.nGroup;
        const grouped = reshape(biased, [T, this.nGroup, perGroup]);
        const groupScore = sum(topk(grouped, 2).values, -1);             // [T, G]: sum of each group's two best
        const kept = topk(groupScore, this.topkGroup).indices;           // [T, topkGroup]
        const mask = scatterAdd(zeros([T, this.nGroup], scores.dtype), 1, kept, ones([T, this.topkGroup], scores.dtype));
        biased = reshape(mul(grouped, unsqueeze(mask, -1)), [T, this.numExperts]); // dropped groups → 0.0
      }
      return topk(biased, this.topK).indices;
    });
  }

  /**
   * DeepSeek-V3 auxiliary-loss-free balancing: after a step, raise the bias of
   * under-loaded experts and lower it for over-loaded ones by `rate`.
   * `counts` are routing slots per expert (MoEOutput.counts, summed over layers' batches as wanted).
   */
  updateCorrectionBias(counts: readonly number[], rate: number): void {
    if (!this.eScoreCorrectionBias) throw new Error('Router.updateCorrectionBias: only the sigmoid router has a correction bias');
    if (counts.length !== this.numExperts) throw new RangeError(`Router.updateCorrectionBias: ${counts.length} counts for ${this.numExperts} experts`);
    const avg = counts.reduce((a, b) => a + b, 0) / counts.length;
    const step = counts.map((c) => rate * Math.sign(avg - c));
    noGrad(() => tidy(() => {
      const b = this.eScoreCorrectionBias!;
      copyInto(add(b, tensor(step, [this.numExperts], b.dtype as FloatDType)), b);
    }));
  }
}

export interface MoEOptions extends RouterOptions {
  hidden: number;
  /** SwiGLU width of one routed expert. */
  intermediate: number;
  /** Shared experts, fused into one SwiGLU of width numShared·intermediate (0: none). */
  numShared?: number;
}

/** Existing modules of an MoE (see MoE's constructor). */
export interface MoEParts {
  gate: Router;
  experts: readonly SwiGLU[];
  sharedExperts?: SwiGLU | null;
}

function checkParts(opts: MoEOptions, p: MoEParts): void {
  const at = `MoE(hidden ${opts.hidden}, ${opts.numExperts} × ${opts.intermediate})`;
  const g = p.gate;
  if (g.hidden !== opts.hidden || g.numExperts !== opts.numExperts || g.topK !== opts.topK || g.scoring !== opts.scoring) {
    throw new RangeError(`${at}: router (hidden ${g.hidden}, ${g.numExperts} experts, top-${g.topK}, ${g.scoring}) does not match the options`);
  }
  if (p.experts.length !== opts.numExperts) throw new RangeError(`${at}: ${p.experts.length} experts given`);
  p.experts.forEach((e, i) => {
    if (e.gateProj.inFeatures !== opts.hidden || e.gateProj.outFeatures !== opts.intermediate) {
      throw new RangeError(`${at}: expert ${i} is ${e.gateProj.inFeatures} → ${e.gateProj.outFeatures}, expected ${opts.hidden} → ${opts.intermediate}`);
    }
  });
  const width = (opts.numShared ?? 0) * opts.intermediate;
  const got = p.sharedExperts ? p.sharedExperts.gateProj.outFeatures : 0;
  if (got !== width || (p.sharedExperts && p.sharedExperts.gateProj.inFeatures !== opts.hidden)) {
    throw new RangeError(`${at}: shared experts of width ${got} given, options say ${opts.numShared ?? 0} × ${opts.intermediate}`);
  }
}

export interface MoEOutput {
  /** [T, d] */
  out: Tensor;
  routing: Routing;
  /** Routing slots (token, choice) per expert in this forward (Σ = T·k). */
  counts: number[];
}

/** Routed experts (+ optional shared experts), computed sparsely. */
export class MoE extends Module {
  readonly gate: Router;
  readonly experts: SwiGLU[];
  readonly sharedExperts: SwiGLU | null;

  /** `parts`: existing router and experts (e.g. around loaded weights) instead of new random ones; they must match `opts`. */
  constructor(readonly opts: MoEOptions, parts?: MoEParts) {
    super();
    const shared = opts.numShared ?? 0;
    if (parts) checkParts(opts, parts);
    this.gate = this.module('gate', parts?.gate ?? new Router(opts.hidden, opts));
    const experts: SwiGLU[] = parts ? [...parts.experts] : [];
    if (!parts) for (let e = 0; e < opts.numExperts; e++) experts.push(new SwiGLU(opts.hidden, opts.intermediate, { dtype: opts.dtype }));
    this.experts = this.modules('experts', experts);
    const sharedModule = parts ? parts.sharedExperts ?? null : shared > 0 ? new SwiGLU(opts.hidden, shared * opts.intermediate, { dtype: opts.dtype }) : null;
    this.sharedExperts = sharedModule ? this.module('shared_experts', sharedModule) : null;
  }

  /** An MoE from an existing router, one SwiGLU per routed expert, and optional shared experts (one SwiGLU of width numShared·intermediate). */
  static fromModules(gate: Router, experts: readonly SwiGLU[], sharedExperts: SwiGLU | null = null): MoE {
    if (!experts.length) throw new RangeError('MoE.fromModules: no experts');
    const intermediate = experts[0]!.gateProj.outFeatures;
    const numShared = sharedExperts ? sharedExperts.gateProj.outFeatures / intermediate : 0;
    if (!Number.isInteger(numShared)) {
      throw new RangeError(`MoE.fromModules: shared experts width ${sharedExperts!.gateProj.outFeatures} is not a multiple of the expert width ${intermediate}`);
    }
    const opts: MoEOptions = {
      hidden: gate.hidden, intermediate, numExperts: gate.numExperts, topK: gate.topK, scoring: gate.scoring, normTopkProb: gate.normTopkProb,
      nGroup: gate.nGroup, topkGroup: gate.topkGroup, routedScalingFactor: gate.routedScalingFactor, numShared,
    };
    return new MoE(opts, { gate, experts, sharedExperts });
  }

  /** x [T, d] → [T, d]. */
  forward(x: Tensor): MoEOutput {
    const [T, d] = x.shape;
    const k = this.gate.topK;
    const routing = this.gate.forward(x);                              // weights, experts: [T, k]
    const plan = moeRoute(routing.experts, this.experts.length);      // slots grouped by expert
    // Each expert runs once on its contiguous block of gathered rows; empty
    // experts are skipped inside groupedLinear (no work, no gradient).
    const rows = indexSelect(x, 0, plan.tokens);                      // [T·k, d], expert order
    const expertOut = this.experts.some((e) => e.gateProj.quantized || e.upProj.quantized || e.downProj.quantized)
      ? this.quantizedExperts(rows, plan.offsets)
      : this.groupedExperts(rows, plan.offsets);                        // [T·k, d]
    const gates = indexSelect(reshape(routing.weights, [T * k]), 0, plan.order); // [T·k], dispatch order
    const weighted = mul(expertOut, unsqueeze(gates, 1));             // [T·k, d]
    let out = indexAdd(zeros([T, d], x.dtype), 0, plan.tokens, weighted); // each token sums its k experts
    if (this.sharedExperts) out = add(out, this.sharedExperts.forward(x));
    return { out, routing, counts: plan.counts };
  }

  /** The experts on their row blocks of `rows` (offsets per expert), as grouped ops over the float weights. */
  private groupedExperts(rows: Tensor, offsets: readonly number[]): Tensor {
    const weightsOf = (pick: (e: SwiGLU) => Linear): Tensor[] => this.experts.map((e) => pick(e).weight);
    // silu(gate) ⊙ up: one fused native call for all experts at inference.
    const hidden = groupedSwiGLU(rows, weightsOf((e) => e.gateProj), weightsOf((e) => e.upProj), offsets);
    return groupedLinear(hidden, weightsOf((e) => e.downProj), offsets);
  }

  /**
   * The same with int8/int4 expert weights (quantised checkpoints): each expert with rows runs its own
   * SwiGLU (quantised matmuls: streaming GEMV for a few rows, AMX or VNNI for more), outputs concatenated
   * in expert order. One call per expert and matrix: there is no grouped quantised kernel.
   */
  private quantizedExperts(rows: Tensor, offsets: readonly number[]): Tensor {
    const outs: Tensor[] = [];
    for (let e = 0; e < this.experts.length; e++) {
      const n = offsets[e + 1]! - offsets[e]!;
      if (n === 0) continue;
      const xs = narrow(rows, 0, offsets[e]!, n);
      outs.push(this.experts[e]!.forward(xs));
      xs.dispose();
    }
    if (!outs.length) return zeros([0, this.opts.hidden], rows.dtype);
    const out = outs.length === 1 ? outs[0]! : cat(outs, 0);
    if (out !== outs[0]) for (const t of outs) if (!needsGrad(t)) t.dispose();
    return out;
  }
}

// ------------------------------------------------------------------ losses

/**
 * Switch-Transformer load-balancing loss for one layer: E · Σ_e f_e · P_e, with
 * f_e = (routing slots on expert e) / (T·k) and P_e = mean over tokens of the
 * routing probability of e. Perfectly balanced routing gives exactly 1 whatever
 * k is. (Hugging Face's `load_balancing_loss_func` normalises f by T only, so
 * its value is k times this one.) Differentiable through P.
 */
export function loadBalancingLoss(probs: Tensor, counts: readonly number[], topK: number): Tensor {
  const [T, E] = probs.shape;
  if (counts.length !== E) throw new RangeError(`loadBalancingLoss: ${counts.length} counts for ${E} experts (probs [${probs.shape}])`);
  const f = tensor(counts.map((c) => c / (T * topK)), [E], probs.dtype as FloatDType);
  return mulScalar(sum(mul(f, mean(probs, 0))), E);
}

/** ST-MoE router z-loss: mean over tokens of logsumexp(logits)². */
export function routerZLoss(logits: Tensor): Tensor {
  return mean(square(logsumexp(logits, -1)));
}
