// Mixed precision as torch.autocast(dtype=float16) does it: inside an autocast region, products run in
// f16 (weights and activations cast on the way in, the casts on the tape so gradients flow back in
// the inputs' dtype), precision-sensitive ops run in f32, and ops meeting f16 and f32 operands promote
// to f32 — which keeps residual streams in f32 exactly as PyTorch's type promotion does.
import { isFloat, type FloatDType } from '../dtype.js';
import { DTypeError } from '../errors.js';
import { autocastDtype, withAutocast } from '../tensor/autocast.js';
import type { Tensor } from '../tensor/tensor.js';
import { cast } from './cast.js';
import { installAutocastHook } from './define.js';

/** Ops that run in the autocast dtype (torch's lower-precision list: mm, linear, conv…). */
const LOWER = new Set(['matmul', 'linear', 'linear_gelu']);

/**
 * Ops that run in f32 whatever their inputs (torch's fp32 list: layer_norm, softmax, log_softmax,
 * cross_entropy, norm, sum, exp, log, rsqrt, pow). Attention follows its inputs, which under autocast
 * come from f16 projections (scaled_dot_product_attention is on torch's lower list).
 */
const F32 = new Set(['layerNorm', 'softmax', 'logSoftmax', 'crossEntropy', 'l2Normalize', 'sum', 'exp', 'log', 'rsqrt', 'pow']);

function policy(name: string, inputs: readonly Tensor[]): Tensor[] | null {
  const lower = autocastDtype();
  if (lower === null || name === 'cast') return null;
  let target: FloatDType | null = LOWER.has(name) ? lower : F32.has(name) ? 'f32' : null;
  if (target === null) {
    // Promotion: mixed float operands meet in f32.
    const kinds = new Set(inputs.filter((t) => isFloat(t.dtype)).map((t) => t.dtype));
    if (kinds.size < 2) return null;
    target = 'f32';
  }
  const to = target;
  if (!inputs.some((t) => isFloat(t.dtype) && t.dtype !== to)) return null;
  if (to === 'f16' && !inputs.every((t) => t.device.caps.f16)) {
    throw new DTypeError(`autocast to f16 needs the shader-f16 feature, which this adapter lacks (run ${name} in f32: leave autocast off)`);
  }
  return inputs.map((t) => (isFloat(t.dtype) && t.dtype !== to ? cast(t, to) : t));
}

installAutocastHook(policy);

export interface AutocastOptions {
  /** Default true; false runs fn with autocast off (torch's `enabled=False`). */
  enabled?: boolean;
  /** Lower-precision dtype; only 'f16' is meaningful (f32 makes the region a no-op). Default 'f16'. */
  dtype?: FloatDType;
}

/**
 * Runs fn in an autocast region. Call backward() outside it (as with torch, the backward of each op
 * runs in its forward's dtypes anyway); regions nest, the innermost wins. The f16 path needs
 * `device.caps.f16`; a product reached under autocast on an adapter without it throws DTypeError.
 */
export function autocast<T>(fn: () => T, opts: AutocastOptions = {}): T {
  const on = opts.enabled ?? true;
  const dtype = opts.dtype ?? 'f16';
  return withAutocast(on && dtype === 'f16' ? 'f16' : null, fn);
}

/** Whether an autocast region is active (and its dtype). */
export { autocastDtype };
