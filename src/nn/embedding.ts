import { Tensor, empty, normal_, embedding } from '../tensor/index.ts';
import { Module } from './module.ts';

/** Token embedding table [vocab, dim], initialised N(0, 1) like torch.nn.Embedding. */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: { dtype?: 'float32' | 'float64'; std?: number } = {}) {
    super();
    if (!Number.isInteger(numEmbeddings) || numEmbeddings <= 0 || !Number.isInteger(embeddingDim) || embeddingDim <= 0) {
      throw new RangeError(`Embedding: sizes must be positive integers, got ${numEmbeddings}×${embeddingDim}`);
    }
    this.weight = this.param('weight', normal_(empty([numEmbeddings, embeddingDim], opts.dtype ?? 'float32'), 0, opts.std ?? 1));
  }

  /** ids: int32 tensor of any shape → [..., dim]. */
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}
