import common from '../../shaders/elementwise_common.wgsl';
import castSrc from '../../shaders/cast.wgsl';
import { ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { isContiguous } from '../tensor/shape.js';
import { coalesce, grid, Uniforms, type View } from './view.js';

const SOURCE = `${common}\n${castSrc}`;
const WG = 256;

/** Converts x into out (same shape, any strides for both): the one kernel whose input and output types differ. */
export function castInto(dev: Device, out: View, x: View): void {
  if (x.shape.length !== out.shape.length || x.shape.some((d, i) => d !== out.shape[i])) {
    throw new ShapeError(`cast: input [${x.shape.join(', ')}] does not match output [${out.shape.join(', ')}]`);
  }
  const n = out.shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const contig = isContiguous(x.shape, x.strides) && isContiguous(out.shape, out.strides);
  const { shape, strides } = contig ? { shape: [n], strides: [[1], [1]] } : coalesce(out.shape, [out.strides, x.strides]);
  // Same uniform block as the elementwise kernels (elementwise_common.wgsl's Params).
  const u = new Uniforms(64)
    .u(n, shape.length)
    .f(0, 0)
    .u(out.offset, x.offset, 0, 0)
    .u(0, 0, 0, 0)
    .arr(shape, 8, 1)
    .arr(strides[0] as number[], 8)
    .arr(strides[1] as number[], 8)
    .arr([], 8);
  // The f16 enable is keyed on the dtype option (the template's f16 only appears after substitution).
  const kernel = dev.pipelines.get('cast', SOURCE, {
    dtype: x.dtype === 'f16' || out.dtype === 'f16' ? 'f16' : 'f32',
    defines: { TI: x.dtype, TO: out.dtype },
    constants: { CONTIG: contig ? 1 : 0, WG },
  });
  dev.dispatch(kernel, [x.buffer, out.buffer], u.bytes(), grid(Math.ceil(n / WG), dev.caps.maxWorkgroupsPerDim));
}
