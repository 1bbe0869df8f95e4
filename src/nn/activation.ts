import { Tensor, gelu, geluTanh, quickGelu, silu, relu, type Activation } from '../tensor/index.ts';

/** Activation names as they appear in configs (Hugging Face `hidden_act` spellings included). */
export type ActivationName = 'gelu' | 'gelu_tanh' | 'gelu_pytorch_tanh' | 'quick_gelu' | 'silu' | 'swish' | 'relu';

const TABLE: Record<ActivationName, (x: Tensor) => Tensor> = {
  gelu,
  gelu_tanh: geluTanh,
  gelu_pytorch_tanh: geluTanh,
  quick_gelu: quickGelu,
  silu,
  swish: silu,
  relu,
};

export const ACTIVATIONS = Object.keys(TABLE) as ActivationName[];

/** The activation function for a config name; throws naming the known ones. */
export function activation(name: string): (x: Tensor) => Tensor {
  const f = TABLE[name as ActivationName];
  if (!f) throw new Error(`unknown activation '${name}' (known: ${ACTIVATIONS.join(', ')})`);
  return f;
}

const KIND: Record<ActivationName, Activation> = {
  gelu: 'gelu',
  gelu_tanh: 'geluTanh',
  gelu_pytorch_tanh: 'geluTanh',
  quick_gelu: 'quickGelu',
  silu: 'silu',
  swish: 'silu',
  relu: 'relu',
};

/** The activation op's name (`Activation`, as `linearAct` and `biasAct` take it) for a config name. */
export function activationKind(name: string): Activation {
  const k = KIND[name as ActivationName];
  if (!k) throw new Error(`unknown activation '${name}' (known: ${ACTIVATIONS.join(', ')})`);
  return k;
}
