/**
 * Module: a named tree of parameters and sub-modules. Parameter names are
 * dotted paths ("blocks.3.attn.qkv.weight"), as in PyTorch state dicts, so
 * checkpoints map one-to-one onto the tree.
 */
import { Tensor, keep, castInto, copyInto, noGrad } from '../tensor/index.ts';

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _modules = new Map<string, Module>();

  /** Registers a trainable parameter; it is kept out of memory scopes and requires grad. */
  protected param(name: string, t: Tensor, requiresGrad = true): Tensor {
    keep(t);
    t.requiresGrad = requiresGrad;
    t.name = name;
    this._params.set(name, t);
    (this as unknown as Record<string, unknown>)[name] = t;
    return t;
  }

  /** Registers a non-trainable tensor saved in the state dict (e.g. a learned-position table copy). */
  protected buffer(name: string, t: Tensor): Tensor {
    keep(t);
    this._buffers.set(name, t);
    (this as unknown as Record<string, unknown>)[name] = t;
    return t;
  }

  /** Registers a sub-module under `name`. */
  protected module<M extends Module>(name: string, m: M): M {
    this._modules.set(name, m);
    return m;
  }

  /** Registers a list of sub-modules as name.0, name.1, … */
  protected modules<M extends Module>(name: string, ms: M[]): M[] {
    ms.forEach((m, i) => this._modules.set(`${name}.${i}`, m));
    return ms;
  }

  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, t] of this._params) yield [prefix + n, t];
    for (const [n, m] of this._modules) yield* m.namedParameters(`${prefix}${n}.`);
  }

  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, t] of this._buffers) yield [prefix + n, t];
    for (const [n, m] of this._modules) yield* m.namedBuffers(`${prefix}${n}.`);
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix.replace(/\.$/, ''), this];
    for (const [n, m] of this._modules) yield* m.namedModules(`${prefix}${n}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  numParameters(): number {
    let n = 0;
    for (const [, t] of this.namedParameters()) n += t.size;
    return n;
  }

  /** Parameters and buffers by dotted name (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [n, t] of this.namedParameters()) out[n] = t;
    for (const [n, t] of this.namedBuffers()) out[n] = t;
    return out;
  }

  /**
   * Copies values from `state` into this module's tensors (casting dtype if
   * needed). With `strict` (default) missing or unexpected keys are errors;
   * shapes must always match. Returns the keys that were not used.
   */
  loadStateDict(state: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missing = Object.keys(own).filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !(k in own));
    if (strict && (missing.length || unexpected.length)) {
      const parts = [];
      if (missing.length) parts.push(`missing keys: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` (+${missing.length - 10} more)` : ''}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.slice(0, 10).join(', ')}${unexpected.length > 10 ? ` (+${unexpected.length - 10} more)` : ''}`);
      throw new Error(`loadStateDict: ${parts.join('; ')}`);
    }
    noGrad(() => {
      for (const [k, dst] of Object.entries(own)) {
        const src = state[k];
        if (!src) continue;
        if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i])) {
          throw new Error(`loadStateDict: '${k}' has shape [${src.shape}] in the state dict but [${dst.shape}] in the model`);
        }
        if (src.dtype === dst.dtype) copyInto(src, dst);
        else castInto(src, dst);
      }
    });
    return { missing, unexpected };
  }

  /**
   * Replaces a parameter tensor outright (e.g. to keep bf16 weights as loaded
   * instead of casting them). The old tensor is disposed.
   */
  setParameter(path: string, t: Tensor): void {
    const dot = path.lastIndexOf('.');
    const owner = dot < 0 ? this : this.getModule(path.slice(0, dot));
    const name = dot < 0 ? path : path.slice(dot + 1);
    const old = owner._params.get(name);
    if (!old) throw new Error(`setParameter: no parameter '${path}'`);
    if (old.shape.length !== t.shape.length || old.shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`setParameter: '${path}' has shape [${old.shape}], got [${t.shape}]`);
    }
    if (old !== t) old.dispose();
    owner.param(name, t, old.requiresGrad && (t.dtype === 'float32' || t.dtype === 'float64'));
  }

  getModule(path: string): Module {
    let m: Module = this;
    // Module names may themselves contain dots (lists: "blocks.3"), so match greedily.
    const parts = path.split('.');
    let i = 0;
    while (i < parts.length) {
      let found: Module | undefined;
      let j = parts.length;
      for (; j > i; j--) {
        found = m._modules.get(parts.slice(i, j).join('.'));
        if (found) break;
      }
      if (!found) throw new Error(`getModule: no sub-module '${path}'`);
      m = found;
      i = j;
    }
    return m;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const [, t] of this.namedParameters()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, t] of this.namedParameters()) t.dispose();
    for (const [, t] of this.namedBuffers()) t.dispose();
  }
}
