import source from '../../shaders/adamw_gated.wgsl';
import stepsSource from '../../shaders/adamw_steps.wgsl';
import { DTypeError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import type { AdamWHyper } from './adamw.js';
import { grid, Uniforms, type View } from './view.js';

const WG = 256;

/**
 * AdamW on n contiguous elements whose gradient is multiplied by gate[gateOffset] and which is skipped
 * when gate[gateOffset + 1] ≠ 0; the bias corrections use steps[slot] + 1 (the GPU-side step count).
 */
export function adamwStepGated(dev: Device, param: View, grad: View, m: View, v: View, n: number, h: Omit<AdamWHyper, 'step'>, steps: View, slot: number, gate: View, gateOffset: number): void {
  if (param.dtype === 'i32' || grad.dtype !== param.dtype) throw new DTypeError(`adamw: param ${param.dtype} and grad ${grad.dtype} must be the same floating type`);
  if (m.dtype !== 'f32' || v.dtype !== 'f32' || steps.dtype !== 'f32' || gate.dtype !== 'f32') throw new DTypeError('adamw: moments, step counts and gate must be f32');
  if (m.offset !== 0 || v.offset !== 0) throw new ShapeError('adamw: moment views must start at offset 0');
  if (n === 0) return;
  const u = new Uniforms(16)
    .u(n, param.offset, grad.offset, steps.offset + slot, gate.offset + gateOffset, 0, 0, 0)
    .f(1 - h.lr * h.weightDecay, h.beta1, h.beta2, h.eps, h.lr, 1 - h.beta1, 1 - h.beta2, 0);
  const kernel = dev.pipelines.get('adamw-gated', source, { dtype: param.dtype, constants: { WG } });
  dev.dispatch(kernel, [param.buffer, grad.buffer, m.buffer, v.buffer, steps.buffer, gate.buffer], u.bytes(), grid(Math.ceil(n / WG), dev.caps.maxWorkgroupsPerDim));
}

/** steps[idx[j]] += 1 for j < count, unless gate[gateOffset + 1] ≠ 0 (the step was skipped). */
export function advanceSteps(dev: Device, steps: View, idx: View, count: number, gate: View, gateOffset: number): void {
  if (count === 0) return;
  if (steps.offset !== 0 || idx.offset !== 0) throw new ShapeError('adamw: step-count views must start at offset 0');
  const u = new Uniforms(4).u(count, gate.offset + gateOffset, 0, 0);
  const kernel = dev.pipelines.get('adamw-steps', stepsSource, { constants: { WG: 64 } });
  dev.dispatch(kernel, [steps.buffer, idx.buffer, gate.buffer], u.bytes(), [Math.ceil(count / 64)]);
}
