import source from '../../shaders/reduce.wgsl';
import type { Device } from '../gpu/device.js';
import { fourLaneSimd } from './lanes.js';
import { grid, Uniforms, type View } from './view.js';

export type ReduceOp = 'sum' | 'mean' | 'max';
const WG = 256;

/**
 * Reduces contiguous x, seen as [outer, r, inner], over r into contiguous y ([outer, inner] elements).
 */
export function reduce(dev: Device, op: ReduceOp, x: View, y: View, outer: number, r: number, inner: number): void {
  if (outer * inner === 0) return;
  const u = new Uniforms(8)
    .u(outer, r, inner, op === 'max' ? 1 : 0)
    .f(op === 'mean' ? 1 / r : 1)
    .u(x.offset, y.offset, 0);
  // Short rows: one thread walks each row (the column kernel with inner = 1); a workgroup per row
  // would leave most of its threads idle (and SwiftShader runs them all).
  const rows = inner === 1 && r > 64;
  // 4-lane CPU SIMD (SwiftShader, lanes.ts): a workgroup of one subgroup makes the row tree's barriers
  // free, and spreads a few hundred columns (bias gradients) over several workgroups, i.e. threads
  // (many columns keep big workgroups: each workgroup has a fixed cost there).
  const four = fourLaneSimd(dev) && (rows || outer * inner <= 4096);
  const wg = four ? 4 : rows ? Math.min(r <= 512 ? 64 : WG, dev.caps.maxInvocations) : Math.min(WG, dev.caps.maxInvocations);
  const kernel = dev.pipelines.get('reduce', source, { dtype: x.dtype === 'f16' ? 'f16' : 'f32', entryPoint: rows ? 'rows' : 'cols', constants: { WG: wg } });
  const groups = rows ? outer : Math.ceil((outer * inner) / wg);
  dev.dispatch(kernel, [x.buffer, y.buffer], u.bytes(), grid(groups, dev.caps.maxWorkgroupsPerDim));
}
