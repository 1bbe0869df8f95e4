/** Reductions. (Being written: sum, mean, max, logsumexp; sumTo below is the contract view.ts relies on.) */
import type { Tensor, Shape } from '../tensor.ts';

/** Sums `g` over broadcast dimensions so that it has `shape` (the gradient of expand/broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  throw new Error(`sumTo: not implemented yet ([${g.shape}] -> [${shape}])`);
}
