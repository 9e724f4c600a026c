import source from '../../shaders/layernorm.wgsl';
import type { Binding, Device } from '../gpu/device.js';
import { dummyBuffer, rowKernel, storageType } from './rows.js';
import { Uniforms, type View } from './view.js';

const COL_WG = 64;

interface LnParams {
  rows: number;
  n: number;
  eps?: number;
  w?: View | null;
  b?: View | null;
  x: View;
  g?: View;
  yOff?: number;
  rpc?: number;
  chunks?: number;
}

function uniforms(p: LnParams): Uint8Array {
  const flags = (p.w ? 1 : 0) | (p.b ? 2 : 0);
  return new Uniforms(12)
    .u(p.rows, p.n, flags)
    .f(p.eps ?? 0)
    .u(p.x.offset, p.w?.offset ?? 0, p.b?.offset ?? 0, p.g?.offset ?? 0)
    .u(p.yOff ?? 0, p.rpc ?? 0, p.chunks ?? 0, 0)
    .bytes();
}

/**
 * y = (x − mean)·rstd·w + b over the last axis of contiguous [rows, n] x; writes the row statistics
 * (3 f32 per row: shift, delta with mean = shift + delta, rstd) to `stats`. `y` is the output binding, `yOff` its element offset.
 */
export function layerNormForward(dev: Device, x: View, w: View | null, b: View | null, y: Binding, yOff: number, stats: Binding, rows: number, n: number, eps: number): void {
  if (rows === 0 || n === 0) return;
  const { kernel, workgroups } = rowKernel(dev, 'layernorm', source, 'forward', storageType(x.dtype), rows, n);
  const dummy = dummyBuffer(dev);
  dev.dispatch(kernel, [x.buffer, w?.buffer ?? dummy, b?.buffer ?? dummy, y, stats], uniforms({ rows, n, eps, w, b, x, yOff }), workgroups);
}

/** dx from x, the saved statistics, the weight (if any) and the output gradient g (contiguous). */
export function layerNormBackward(dev: Device, x: View, w: View | null, g: View, stats: Binding, dx: View, rows: number, n: number): void {
  if (rows === 0 || n === 0) return;
  const { kernel, workgroups } = rowKernel(dev, 'layernorm', source, 'backward', storageType(x.dtype), rows, n);
  dev.dispatch(kernel, [x.buffer, w?.buffer ?? dummyBuffer(dev), g.buffer, stats, dx.buffer], uniforms({ rows, n, w, x, g, yOff: dx.offset }), workgroups);
}

/** How the column reduction splits the rows: rows per chunk and the chunk count. */
export function paramGradChunks(rows: number): { rpc: number; chunks: number } {
  const rpc = Math.max(16, Math.ceil(rows / 256));
  return { rpc, chunks: Math.max(1, Math.ceil(rows / rpc)) };
}

/**
 * dweight = Σ_rows g·xhat and dbias = Σ_rows g into dw and db ([n] each), through `partial`, an f32
 * scratch of 2·chunks·n elements (chunks from paramGradChunks).
 */
export function layerNormParamGrads(dev: Device, x: View, g: View, stats: Binding, partial: View, dw: View, db: View, rows: number, n: number): void {
  if (n === 0) return;
  const { rpc, chunks } = paramGradChunks(rows);
  const dtype = storageType(x.dtype);
  const k1 = dev.pipelines.get('layernorm.dparams_partial', source, { dtype, entryPoint: 'dparams_partial', constants: { WG: COL_WG } });
  const k2 = dev.pipelines.get('layernorm.dparams_final', source, { dtype, entryPoint: 'dparams_final', constants: { WG: COL_WG } });
  const cols = Math.ceil(n / COL_WG);
  dev.dispatch(k1, [x.buffer, g.buffer, stats, partial.buffer], uniforms({ rows, n, x, g, rpc, chunks }), [cols, chunks]);
  dev.dispatch(k2, [partial.buffer, dw.buffer, db.buffer], uniforms({ rows, n, x, g, rpc, chunks }), [cols]);
}
