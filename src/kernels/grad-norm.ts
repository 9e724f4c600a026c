import sumsqSource from '../../shaders/grad_sumsq.wgsl';
import normSource from '../../shaders/grad_norm.wgsl';
import scaleSource from '../../shaders/grad_scale.wgsl';
import { DTypeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { fourLaneSimd } from './lanes.js';
import { grid, Uniforms, type View } from './view.js';

/** Most workgroups one tensor's sum of squares uses (each writes one partial). */
export const SUMSQ_MAX_GROUPS = 64;

// On 4-lane CPU SIMD (SwiftShader) a workgroup is one subgroup, so the tree reduction's barriers cost
// nothing: 256 invocations took ~0.6 ms per workgroup there, ~1 s per demo step over 93 gradients.
const wgOf = (dev: Device) => (fourLaneSimd(dev) ? 4 : Math.min(256, dev.caps.maxInvocations));
/** Elementwise (no barriers): per-workgroup overhead favours big workgroups everywhere. */
const scaleWg = (dev: Device) => Math.min(256, dev.caps.maxInvocations);

/** Partial slots a contiguous tensor of n elements needs. */
export function sumsqSlots(dev: Device, n: number): number {
  return Math.max(1, Math.min(SUMSQ_MAX_GROUPS, Math.ceil(n / wgOf(dev))));
}

/** Writes the partial sums of x² (contiguous view of n elements) into partial[slot … slot + sumsqSlots). */
export function sumOfSquares(dev: Device, x: View, n: number, partial: View, slot: number): void {
  if (x.dtype === 'i32') throw new DTypeError('gradient norm of an integer tensor');
  const WG = wgOf(dev);
  const groups = sumsqSlots(dev, n);
  const u = new Uniforms(4).u(n, x.offset, partial.offset + slot, 0);
  const k = dev.pipelines.get('grad-sumsq', sumsqSource, { dtype: x.dtype, constants: { WG } });
  dev.dispatch(k, [x.buffer, partial.buffer], u.bytes(), [groups]);
}

/** out[0] = sqrt(Σ partial[0 … count)), out[1] = the clip coefficient (1 when maxNorm is null). */
export function finishNorm(dev: Device, partial: View, count: number, out: View, maxNorm: number | null): void {
  const WG = wgOf(dev);
  const u = new Uniforms(8).u(count, maxNorm === null ? 0 : 1).f(maxNorm ?? 0).u(partial.offset, out.offset, 0, 0, 0);
  const k = dev.pipelines.get('grad-norm', normSource, { constants: { WG } });
  dev.dispatch(k, [partial.buffer, out.buffer], u.bytes(), [1]);
}

/** g[i] *= coef[coefIndex] in place (g a contiguous view of n elements). */
export function scaleBy(dev: Device, g: View, n: number, coef: View, coefIndex: number): void {
  if (n === 0) return;
  const WG = scaleWg(dev);
  const u = new Uniforms(4).u(n, g.offset, coef.offset + coefIndex, 0);
  const k = dev.pipelines.get('grad-scale', scaleSource, { dtype: g.dtype === 'f16' ? 'f16' : 'f32', constants: { WG } });
  dev.dispatch(k, [g.buffer, coef.buffer], u.bytes(), grid(Math.ceil(n / WG), dev.caps.maxWorkgroupsPerDim));
}
