import common from '../../shaders/gather_common.wgsl';
import gatherSrc from '../../shaders/gather.wgsl';
import linksSrc from '../../shaders/gather_links.wgsl';
import scatterSrc from '../../shaders/gather_scatter.wgsl';
import { DTypeError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { grid, Uniforms, type View } from './view.js';

const GATHER = `${common}\n${gatherSrc}`;
const LINKS = `${common}\n${linksSrc}`;
const SCATTER = `${common}\n${scatterSrc}`;
const WG = 256;

function floatType(v: View): 'f32' | 'f16' {
  if (v.dtype === 'i32') throw new DTypeError('gather tables and gradients must be floating');
  return v.dtype;
}

function checkIndices(idx: View, n: number): void {
  if (idx.dtype !== 'i32') throw new DTypeError(`gather indices must be i32, got ${idx.dtype}`);
  let acc = 1;
  for (let i = idx.shape.length - 1; i >= 0; i--) {
    const d = idx.shape[i] as number;
    if (d !== 1 && idx.strides[i] !== acc) throw new ShapeError('gather indices must be contiguous');
    acc *= d;
  }
  if (acc !== n) throw new ShapeError(`gather: ${acc} indices for ${n} rows`);
}

/**
 * out[t, :] = table[idx[t], :] for t < n (out contiguous [n, d]). The table may be strided; indices
 * outside [0, v) give zero rows.
 */
export function gatherRows(dev: Device, table: View, idx: View, out: View, n: number): void {
  checkIndices(idx, n);
  const [v, d] = table.shape as [number, number];
  if (n * d === 0) return;
  const u = new Uniforms(8).u(n, d, v, idx.offset, table.offset, table.strides[0] as number, table.strides[1] as number, out.offset);
  const kernel = dev.pipelines.get('gather', GATHER, { dtype: floatType(table), constants: { WG } });
  dev.dispatch(kernel, [table.buffer, idx.buffer, out.buffer], u.bytes(), grid(Math.ceil((n * d) / WG), dev.caps.maxWorkgroupsPerDim));
}

/**
 * out[idx[t], :] = Σ g[t, :] over the tokens t naming each row, summed in token order (deterministic).
 * g is contiguous [n, d]; out is contiguous [v, d] and must be zero-filled by the caller (rows no token
 * names are not written). Tokens with an index outside [0, v) are skipped.
 */
export function scatterAddRows(dev: Device, g: View, idx: View, out: View, n: number): void {
  checkIndices(idx, n);
  const [v, d] = out.shape as [number, number];
  if (n * d === 0) return;
  const u = new Uniforms(8).u(n, d, v, idx.offset, g.offset, 0, 0, out.offset).bytes();
  // Head flags and next links, 2 u32 per token; scratch from the pool, returned once recorded (queue
  // order keeps a later reuse behind this dispatch).
  const links = dev.pool.acquire(n * 8);
  try {
    const lk = dev.pipelines.get('gather-links', LINKS, { constants: { WG } });
    dev.dispatch(lk, [idx.buffer, links], u, grid(Math.ceil(n / WG), dev.caps.maxWorkgroupsPerDim));
    const sk = dev.pipelines.get('gather-scatter', SCATTER, { dtype: floatType(g), constants: { WG } });
    dev.dispatch(sk, [g.buffer, idx.buffer, links, out.buffer], u, grid(Math.ceil((n * d) / WG), dev.caps.maxWorkgroupsPerDim));
  } finally {
    dev.pool.release(links);
  }
}
