import { Tensor, empty, normal_, embedding } from '../tensor/index.ts';
import { Module } from './module.ts';

/** Token embedding table [vocab, dim], initialised N(0, 1) like torch.nn.Embedding. */
export class Embedding extends Module {
  readonly weight: Tensor;

  /** `opts.weight`: an existing table [vocab, dim] used as is (no copy, any dtype the embedding op reads) instead of a random one; frozen unless `trainable`. */
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: { dtype?: 'float32' | 'float64'; std?: number; weight?: Tensor; trainable?: boolean } = {}) {
    super();
    if (!Number.isInteger(numEmbeddings) || numEmbeddings <= 0 || !Number.isInteger(embeddingDim) || embeddingDim <= 0) {
      throw new RangeError(`Embedding: sizes must be positive integers, got ${numEmbeddings}×${embeddingDim}`);
    }
    const w = opts.weight;
    if (w && (w.ndim !== 2 || w.shape[0] !== numEmbeddings || w.shape[1] !== embeddingDim)) {
      throw new RangeError(`Embedding(${numEmbeddings}×${embeddingDim}): weight has shape [${w.shape}], expected [${numEmbeddings}, ${embeddingDim}]`);
    }
    this.weight = w
      ? this.param('weight', w, opts.trainable ?? false)
      : this.param('weight', normal_(empty([numEmbeddings, embeddingDim], opts.dtype ?? 'float32'), 0, opts.std ?? 1));
  }

  /** An Embedding around an existing table [vocab, dim] (e.g. memory-mapped bf16; kept as is). */
  static fromTensors(weight: Tensor, opts: { trainable?: boolean } = {}): Embedding {
    if (weight.ndim !== 2) throw new RangeError(`Embedding.fromTensors: weight must be [vocab, dim], got [${weight.shape}]`);
    return new Embedding(weight.shape[0]!, weight.shape[1]!, { weight, trainable: opts.trainable ?? false });
  }

  /** ids: int32 tensor of any shape → [..., dim]. */
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}
