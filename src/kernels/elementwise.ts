import common from '../../shaders/elementwise_common.wgsl';
import unarySrc from '../../shaders/unary.wgsl';
import binarySrc from '../../shaders/binary.wgsl';
import { DTypeError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { stridedPlan, type StridedScalars } from './strided.js';
import type { View } from './view.js';

const UNARY = `${common}\n${unarySrc}`;
const BINARY = `${common}\n${binarySrc}`;
/** alpha/beta for the expression; seed: Philox key (two u32) and counter base, for random expressions. */
export type ElementwiseScalars = StridedScalars;

/**
 * Launches `out = expr(a[, b])` over out's shape. Inputs must already have out's shape (broadcast
 * inputs are stride-0 views); any strides and offsets are allowed, including for out.
 */
export function elementwise(dev: Device, expr: string, out: View, inputs: readonly View[], s: ElementwiseScalars = {}): void {
  if (inputs.length < 1 || inputs.length > 2) throw new ShapeError(`elementwise takes 1 or 2 inputs, got ${inputs.length}`);
  for (const v of inputs) {
    if (v.shape.length !== out.shape.length || v.shape.some((d, i) => d !== out.shape[i])) {
      throw new ShapeError(`elementwise input [${v.shape.join(', ')}] does not match output [${out.shape.join(', ')}]`);
    }
    if (v.dtype !== out.dtype) throw new DTypeError(`elementwise: input ${v.dtype} and output ${out.dtype} differ (cast first)`);
  }
  if (out.shape.reduce((a, b) => a * b, 1) === 0) return;
  if (out.dtype === 'i32') throw new DTypeError('elementwise kernels take floating tensors');
  // Tiled addressing reorders elements within an invocation, which idx-based (random) expressions must not see.
  const plan = stridedPlan(inputs.length === 1 ? UNARY : BINARY, out, inputs, dev.caps, s, !/\bidx\b/.test(expr));
  const kernel = dev.pipelines.get(inputs.length === 1 ? 'unary' : 'binary', plan.source, {
    dtype: out.dtype === 'f16' ? 'f16' : 'f32',
    defines: { EXPR: expr },
    constants: plan.constants,
  });
  dev.dispatch(kernel, [...inputs.map((v) => v.buffer), out.buffer], plan.uniforms, plan.workgroups);
}
