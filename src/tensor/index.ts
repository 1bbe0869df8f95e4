/** Public tensor API: `import * as T from 'seedvl/tensor'`. */
export * from './dtype.ts';
export { Storage, cpuBackend, type Backend, type Device } from './storage.ts';
export {
  Tensor, type Shape, tensor, empty, zeros, ones, full, zerosLike, onesLike, scalar, arange, fromBuffer,
  contiguousCopy, copyInto, castInto, accumulateInto, numelOf, contiguousStrides, DTYPE_CODE,
} from './tensor.ts';
export { tidy, keep } from './scope.ts';
export { noGrad, enableGrad, isGradEnabled, backward, GradNode, type BackwardOptions } from './autograd.ts';
export { native, setNumThreads, numThreads, nativeMemory, emptyCache } from './native.ts';
export * from './ops/view.ts';
export * from './ops/reduce.ts';
export { manualSeed, nextSeed, uniform_, normal_, rand, randn, dropoutMask, type RandomOptions } from './random.ts';
export * from './ops/indexing.ts';
export * from './ops/rope.ts';
export * from './ops/pool.ts';
export * from './ops/matmul.ts';
export * from './ops/elementwise.ts';
export * from './ops/activation.ts';
export * from './ops/softmax.ts';
export * from './ops/norm.ts';
export * from './ops/loss.ts';
export * from './ops/optim.ts';
export * from './ops/attention.ts';
export * from './ops/grouped.ts';
export * from './ops/linear_fused.ts';
export * from './ops/quant.ts';
