/** Neural-network building blocks: `import * as nn from 'seedvl/nn'`. */
export { Module } from './module.ts';
export { Linear, mlpForward, type LinearOptions } from './linear.ts';
export { Embedding } from './embedding.ts';
export { LayerNorm, RMSNorm, type NormTensors } from './norm.ts';
export { Dropout } from './dropout.ts';
export { activation, activationKind, ACTIVATIONS, type ActivationName } from './activation.ts';
