import source from '../../shaders/segment.wgsl';
import type { Device } from '../gpu/device.js';
import { grid, Uniforms, type View } from './view.js';

/**
 * Segment kernels over contiguous [rows, F] tensors. `expand`: output row f = input row src[f]
 * (÷ count[f] when `mean`). `reduce`: output row s = Σ of its `count[s]` consecutive input rows from
 * `start[s]` (÷ count[s] when `mean`). `pairs` holds (src, count) or (start, count) per output row.
 */
export function segmentKernel(dev: Device, mode: 'expand' | 'reduce', x: View, y: View, rowElems: number, pairs: Uint32Array, mean: boolean): void {
  const n = (pairs.length / 2) * rowElems;
  if (n === 0) return;
  const table = dev.pool.acquire(Math.max(16, pairs.byteLength));
  dev.write(table, 0, pairs);
  const kernel = dev.pipelines.get(`segment_${mode}`, source, { dtype: x.dtype === 'f16' ? 'f16' : 'f32', entryPoint: mode });
  const u = new Uniforms(4).u(n, rowElems, mean ? 1 : 0, x.offset).bytes();
  dev.dispatch(kernel, [table, x.buffer, y.buffer], u, grid(Math.ceil(n / 256), dev.caps.maxWorkgroupsPerDim));
  // Later writes to this buffer are queued after the recorded dispatch.
  dev.pool.release(table);
}
