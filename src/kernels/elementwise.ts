import common from '../../shaders/elementwise_common.wgsl';
import unarySrc from '../../shaders/unary.wgsl';
import binarySrc from '../../shaders/binary.wgsl';
import { DTypeError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { coalesce, grid, Uniforms, type View } from './view.js';

const UNARY = `${common}\n${unarySrc}`;
const BINARY = `${common}\n${binarySrc}`;
const WG = 256;

export interface ElementwiseScalars {
  alpha?: number;
  beta?: number;
  /** Philox key (two u32) and counter base, for random expressions. */
  seed?: readonly [number, number, number];
}

function contiguous(v: View): boolean {
  let acc = 1;
  for (let i = v.shape.length - 1; i >= 0; i--) {
    const d = v.shape[i] as number;
    if (d !== 1 && v.strides[i] !== acc) return false;
    acc *= d;
  }
  return true;
}

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
  const n = out.shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const all = [out, ...inputs];
  const contig = all.every(contiguous);
  const { shape, strides } = contig ? { shape: [n], strides: all.map(() => [1]) } : coalesce(out.shape, all.map((v) => v.strides));
  const u = new Uniforms(64)
    .u(n, shape.length)
    .f(s.alpha ?? 0, s.beta ?? 0)
    .u(out.offset, inputs[0]?.offset ?? 0, inputs[1]?.offset ?? 0, 0)
    .u(s.seed?.[0] ?? 0, s.seed?.[1] ?? 0, s.seed?.[2] ?? 0, 0)
    .arr(shape, 8, 1)
    .arr(strides[0] as number[], 8)
    .arr(strides[1] as number[], 8)
    .arr(strides[2] ?? [], 8);
  const src = inputs.length === 1 ? UNARY : BINARY;
  const kernel = dev.pipelines.get(inputs.length === 1 ? 'unary' : 'binary', src, {
    dtype: out.dtype === 'f16' ? 'f16' : 'f32',
    defines: { EXPR: expr },
    constants: { CONTIG: contig ? 1 : 0, WG },
  });
  if (out.dtype === 'i32') throw new DTypeError('elementwise kernels take floating tensors');
  const buffers = [...inputs.map((v) => v.buffer), out.buffer];
  dev.dispatch(kernel, buffers, u.bytes(), grid(Math.ceil(n / WG), dev.caps.maxWorkgroupsPerDim));
}
