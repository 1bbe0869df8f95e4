/**
 * Builds seedvl's nn modules (Linear, LayerNorm, RMSNorm, SwiGLU, Router, MoE)
 * around tensors that already exist — the checkpoint's memory-mapped bf16
 * weights — instead of through their constructors, which allocate and
 * randomly initialise float32 parameters. For a 3B model those constructors
 * would commit 12 GB and seconds of init only to throw it away; adopting the
 * mapped tensors costs nothing and keeps the weights in their stored dtype.
 *
 * Each helper creates an object of the module class with only Module's own
 * constructor run (`Reflect.construct(Module, [], Class)`), sets the fields the
 * class's `forward` reads, and registers the tensors as (frozen) parameters,
 * so the module prints, names and iterates like one built normally.
 * (A `fromTensors` factory on the nn classes would make this unnecessary; see docs/qwen.md.)
 */
import { Module, Linear, LayerNorm, RMSNorm } from '../../nn/index.ts';
import { SwiGLU, Router, MoE, type MoEOptions } from '../../nn/moe.ts';
import type { Tensor } from '../../tensor/index.ts';

type Ctor<M> = abstract new (...args: never[]) => M;

interface Internals {
  param(name: string, t: Tensor, requiresGrad?: boolean): Tensor;
  module(name: string, m: Module): Module;
  modules(name: string, ms: Module[]): Module[];
}

/** An instance of `cls` with only Module's constructor run. */
function blank<M extends Module>(cls: Ctor<M>): M & Internals {
  return Reflect.construct(Module as unknown as new () => Module, [], cls as unknown as new () => M) as M & Internals;
}

function set(obj: object, fields: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(fields)) Object.defineProperty(obj, k, { value: v, writable: false, enumerable: true, configurable: true });
}

/** Linear y = x·Wᵀ + b around weight [out, in] (float32 or bfloat16, possibly a strided view) and bias [out] float32. */
export function linearFrom(weight: Tensor, bias: Tensor | null = null): Linear {
  const m = blank(Linear);
  set(m, { inFeatures: weight.shape[1], outFeatures: weight.shape[0] });
  m.param('weight', weight, false);
  if (bias) m.param('bias', bias, false);
  else set(m, { bias: null });
  return m;
}

export function layerNormFrom(weight: Tensor, bias: Tensor | null, eps: number): LayerNorm {
  const m = blank(LayerNorm);
  set(m, { dim: weight.shape[0], eps });
  m.param('weight', weight, false);
  if (bias) m.param('bias', bias, false);
  else set(m, { bias: null });
  return m;
}

export function rmsNormFrom(weight: Tensor, eps: number): RMSNorm {
  const m = blank(RMSNorm);
  set(m, { dim: weight.shape[0], eps });
  m.param('weight', weight, false);
  return m;
}

/** down(silu(gate(x)) ⊙ up(x)) from three Linear modules. */
export function swigluFrom(gate: Linear, up: Linear, down: Linear): SwiGLU {
  const m = blank(SwiGLU);
  set(m, { gateProj: m.module('gate_proj', gate), upProj: m.module('up_proj', up), downProj: m.module('down_proj', down) });
  return m;
}

/** A softmax top-k router (Qwen3-MoE) around its weight [E, H]. */
export function softmaxRouterFrom(weight: Tensor, topK: number, normTopkProb: boolean): Router {
  const m = blank(Router);
  const E = weight.shape[0];
  if (topK > E) throw new RangeError(`router: top-k ${topK} exceeds the ${E} experts`);
  set(m, {
    hidden: weight.shape[1], numExperts: E, topK, scoring: 'softmax', normTopkProb,
    nGroup: 1, topkGroup: 1, routedScalingFactor: 1, eScoreCorrectionBias: null,
  });
  m.param('weight', weight, false);
  return m;
}

/** An MoE block (routed experts only, no shared expert) from a router and one SwiGLU per expert. */
export function moeFrom(gate: Router, experts: SwiGLU[], intermediate: number): MoE {
  const m = blank(MoE);
  const opts: MoEOptions = {
    hidden: gate.hidden, intermediate, numExperts: gate.numExperts, topK: gate.topK,
    scoring: 'softmax', normTopkProb: gate.normTopkProb, numShared: 0,
  };
  set(m, { opts, gate: m.module('gate', gate), experts: m.modules('experts', experts), sharedExperts: null });
  return m;
}

/** Any module class around existing sub-modules: `fields` are plain values, `children` are registered by name and set as camelCase fields. */
export function adoptModule<M extends Module>(cls: Ctor<M>, fields: Record<string, unknown>, children: Record<string, Module>): M {
  const m = blank(cls);
  set(m, fields);
  for (const [name, child] of Object.entries(children)) set(m, { [camel(name)]: m.module(name, child) });
  return m;
}

const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** A module's sub-modules registered by name, for plain container classes. */
export function attach<M extends Module>(owner: Module, name: string, child: M): M {
  return (owner as unknown as Internals).module(name, child) as M;
}

export function attachList<M extends Module>(owner: Module, name: string, children: M[]): M[] {
  return (owner as unknown as Internals).modules(name, children) as M[];
}

export function paramOf(owner: Module, name: string, t: Tensor): Tensor {
  return (owner as unknown as Internals).param(name, t, false);
}
