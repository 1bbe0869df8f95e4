/**
 * Reverse-mode automatic differentiation on a tape of GradNodes.
 *
 * An op that produced `out` from inputs records one node: its inputs, the
 * tensors it saved for the backward pass, and a rule mapping the output
 * gradient to input gradients. Nodes are reference-counted (by their output
 * tensor and by downstream nodes) so that disposing results frees the saved
 * activations of graphs that will never be differentiated.
 */
import { type Tensor, onesLike, contiguousCopy, accumulateInto } from './tensor.ts';
import { tidy, keep, inCurrentScope } from './scope.ts';

/** Maps the output gradient to one gradient per input; `saved` are the tensors given to `record` (retained). */
export type BackwardFn = (gradOut: Tensor, saved: Tensor[]) => (Tensor | null | undefined)[];

export class GradNode {
  refs = 1;
  released = false;
  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    public backwardFn: BackwardFn | null,
    public saved: Tensor[],
  ) {
    for (const x of inputs) x.node?.ref();
  }

  ref(): void {
    this.refs++;
  }

  /** Drops one reference; at zero frees saved tensors and releases upstream nodes. */
  unref(): void {
    if (--this.refs > 0) return;
    this.free();
    for (const x of this.inputs) x.node?.unref();
  }

  /** Frees what this node saved; it can no longer be differentiated through. */
  free(): void {
    if (this.released) return;
    this.released = true;
    for (const s of this.saved) s.dispose();
    this.saved = [];
    this.backwardFn = null;
  }
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording a graph (inference, optimiser updates). */
export function noGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function enableGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True if an op on these inputs must record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const x of inputs) if (x && x.requiresGrad) return true;
  return false;
}

/**
 * Records that `out` = op(inputs). `save` lists tensors the rule needs later;
 * they are retained (views sharing storage) so scopes may dispose the originals.
 * Returns `out` for chaining.
 */
export function record(op: string, out: Tensor, inputs: Tensor[], backward: BackwardFn, save: Tensor[] = []): Tensor {
  if (!needsGrad(...inputs)) return out;
  out.requiresGrad = true;
  out.node = new GradNode(op, inputs, backward, save.map((s) => s.retainedView()));
  return out;
}

/** Saved tensor i of a node (throws a clear error if the graph was freed). */
function assertLive(node: GradNode): BackwardFn {
  if (node.released || !node.backwardFn) {
    throw new Error(`backward: the graph through '${node.op}' was already freed (call backward({ retainGraph: true }) to differentiate twice)`);
  }
  return node.backwardFn;
}

export interface BackwardOptions {
  /** Gradient of the root; defaults to ones (the root must then be a scalar). */
  grad?: Tensor;
  /** Keep saved tensors so backward can run again through the same graph. */
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into `leaf.grad` for every leaf with requiresGrad.
 * Gradients add up across calls until zeroed (gradient accumulation).
 */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad (no parameter with requiresGrad contributed to it)');
  if (!opts.grad && root.size !== 1) throw new Error(`backward: root has shape [${root.shape}]; pass opts.grad for non-scalar roots`);
  // Topological order of nodes reachable from the root.
  const order: Tensor[] = [];
  const seen = new Set<GradNode>();
  const stack: [Tensor, number][] = [[root, 0]];
  if (root.node) seen.add(root.node);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const node = t.node!;
    if (!node) {
      stack.pop();
      continue;
    }
    if (i < node.inputs.length) {
      top[1]++;
      const x = node.inputs[i];
      if (x.node && !seen.has(x.node)) {
        seen.add(x.node);
        stack.push([x, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  tidy(() => {
    const grads = new Map<GradNode, Tensor>();
    const leafGrads = new Map<Tensor, Tensor>();
    const seed = opts.grad ?? onesLike(root);
    if (root.node) grads.set(root.node, seed);
    else leafGrads.set(root, seed);
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const node = t.node!;
      const g = grads.get(node);
      if (!g) continue;
      grads.delete(node);
      const fn = assertLive(node);
      const inGrads = noGrad(() => fn(g, node.saved)); // gradients of gradients are not recorded
      node.inputs.forEach((x, j) => {
        const gx = inGrads[j];
        if (!gx || !x.requiresGrad) return;
        if (gx.shape.length !== x.shape.length || gx.shape.some((d, q) => d !== x.shape[q])) {
          throw new Error(`backward: '${node.op}' produced a gradient of shape [${gx.shape}] for an input of shape [${x.shape}]`);
        }
        const into = x.node ? grads : leafGrads;
        const key = (x.node ?? x) as never;
        const prev = (into as Map<unknown, Tensor>).get(key);
        (into as Map<unknown, Tensor>).set(key, prev ? sumOf(prev, gx) : gx);
      });
      if (!opts.retainGraph) node.free();
    }
    const handedOut = new Set<Tensor>();
    for (const [leaf, g] of leafGrads) {
      if (leaf.grad) accumulateInto(leaf.grad, g);
      else if (isPrivate(g, leaf) && !handedOut.has(g)) {
        leaf.grad = keep(g); // a fresh gradient nobody else holds: no copy needed
        handedOut.add(g);
      } else leaf.grad = keep(contiguousCopy(g)); // g may alias the seed, a saved tensor or another gradient
    }
  });
}

/** A gradient made during this backward pass whose memory no other tensor shares. */
function isPrivate(g: Tensor, leaf: Tensor): boolean {
  return inCurrentScope(g) && g.storage.refCount === 1 && g.isContiguous && g.offset === 0 && g.dtype === leaf.dtype;
}

/** a + b for gradient sums, without recording (both have the input's shape). */
function sumOf(a: Tensor, b: Tensor): Tensor {
  const out = contiguousCopy(a);
  accumulateInto(out, b);
  return out;
}
