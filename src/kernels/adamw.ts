import source from '../../shaders/adamw.wgsl';
import { DTypeError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { grid, Uniforms, type View } from './view.js';

const WG = 256;

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count of this parameter (for the bias corrections). */
  step: number;
}

/**
 * One AdamW update of n contiguous elements: param (read-write, in place), grad, and f32 moments m, v
 * (contiguous, offset 0, n elements each). Bias corrections are computed here in float64.
 */
export function adamwStep(dev: Device, param: View, grad: View, m: View, v: View, n: number, h: AdamWHyper): void {
  if (param.dtype === 'i32' || grad.dtype !== param.dtype) throw new DTypeError(`adamw: param ${param.dtype} and grad ${grad.dtype} must be the same floating type`);
  if (m.dtype !== 'f32' || v.dtype !== 'f32') throw new DTypeError('adamw: moments must be f32');
  if (m.offset !== 0 || v.offset !== 0) throw new ShapeError('adamw: moment views must start at offset 0');
  if (n === 0) return;
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  const u = new Uniforms(12)
    .u(n, param.offset, grad.offset, 0)
    .f(1 - h.lr * h.weightDecay, h.beta1, h.beta2, h.eps, h.lr / bc1, 1 / Math.sqrt(bc2), 1 - h.beta1, 1 - h.beta2);
  const kernel = dev.pipelines.get('adamw', source, { dtype: param.dtype, constants: { WG } });
  dev.dispatch(kernel, [param.buffer, grad.buffer, m.buffer, v.buffer], u.bytes(), grid(Math.ceil(n / WG), dev.caps.maxWorkgroupsPerDim));
}
