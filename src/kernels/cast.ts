import common from '../../shaders/elementwise_common.wgsl';
import castSrc from '../../shaders/cast.wgsl';
import { ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { stridedPlan } from './strided.js';
import type { View } from './view.js';

const SOURCE = `${common}\n${castSrc}`;

/** Converts x into out (same shape, any strides for both): the one kernel whose input and output types differ. */
export function castInto(dev: Device, out: View, x: View): void {
  if (x.shape.length !== out.shape.length || x.shape.some((d, i) => d !== out.shape[i])) {
    throw new ShapeError(`cast: input [${x.shape.join(', ')}] does not match output [${out.shape.join(', ')}]`);
  }
  if (out.shape.reduce((a, b) => a * b, 1) === 0) return;
  const plan = stridedPlan(SOURCE, out, [x], dev.caps);
  // The f16 enable is keyed on the dtype option (the template's f16 only appears after substitution).
  const kernel = dev.pipelines.get('cast', plan.source, {
    dtype: x.dtype === 'f16' || out.dtype === 'f16' ? 'f16' : 'f32',
    defines: { TI: x.dtype, TO: out.dtype },
    constants: plan.constants,
  });
  dev.dispatch(kernel, [x.buffer, out.buffer], plan.uniforms, plan.workgroups);
}
