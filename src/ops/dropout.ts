import { assertFloat } from '../dtype.js';
import { ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { philoxKey } from './creation.js';
import { defineOp } from './define.js';
import { unaryKernel } from './elementwise.js';

interface DropoutParams {
  scale: number;
  p: number;
  seed: readonly [number, number, number];
}

// Keep element i when its Philox uniform (counter (i, stream), key from seed) is >= p. The mask is a
// pure function of (seed, stream, i), so backward regenerates it instead of storing it.
const EXPR = 'select(0.0, a * alpha, uniform_(idx) >= beta)';

const dropoutOp = defineOp<[Tensor], DropoutParams>({
  name: 'dropout',
  forward: ([x], { scale, p, seed }) => unaryKernel(EXPR, x, scale, p, seed),
  backward: (g, { params: { scale, p, seed } }) => [unaryKernel(EXPR, g, scale, p, seed)],
});

const identityOp = defineOp<[Tensor], undefined>({
  name: 'dropout-identity',
  forward: ([x]) => x.view(x.shape, x.strides, x.offset),
  backward: (g) => [g.retainHandle()],
});

export interface DropoutOptions {
  /** Off: identity (evaluation). Default true. */
  training?: boolean;
  /** Counter base: distinct streams under one seed give independent masks. Default 0. */
  stream?: number;
}

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p). The mask
 * comes from the counter-based RNG (src/tensor/rng.ts reproduces it on the host): the same (seed,
 * stream) gives the same mask on every device, so give every call site and step its own pair.
 * p = 0 or training = false returns x unchanged (a new handle).
 */
export function dropout(x: Tensor, p: number, seed: number, opts: DropoutOptions = {}): Tensor {
  assertFloat(x.dtype, 'dropout');
  if (!(p >= 0 && p <= 1)) throw new ShapeError(`dropout probability must be in [0, 1], got ${p}`);
  if (p === 0 || opts.training === false) return identityOp([x], undefined);
  const scale = p < 1 ? 1 / (1 - p) : 0;
  return dropoutOp([x], { scale, p, seed: [...philoxKey(seed), opts.stream ?? 0] });
}
