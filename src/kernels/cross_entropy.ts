import source from '../../shaders/cross_entropy.wgsl';
import type { Binding, Device } from '../gpu/device.js';
import { rowKernel, rowWorkgroup, storageType } from './rows.js';
import { Uniforms, type View } from './view.js';

export type Reduction = 'none' | 'sum' | 'mean';
const MODE: Record<Reduction, number> = { none: 0, sum: 1, mean: 2 };

/** f32 statistics the forward leaves for the backward (see shaders/cross_entropy.wgsl). */
export function crossEntropyStatsLength(rows: number, reduction: Reduction): number {
  return reduction === 'none' ? rows : 2 * rows + 1;
}

function uniforms(rows: number, c: number, reduction: Reduction, ignore: number, offs: { x: number; t: number; g?: number; o?: number }): Uint8Array {
  return new Uniforms(8).u(rows, c, MODE[reduction]).i(ignore).u(offs.x, offs.t, offs.g ?? 0, offs.o ?? 0).bytes();
}

/**
 * Loss of contiguous logits x [rows, c] against i32 targets [rows] into `out` (a binding with element
 * offset `outOff`: [rows] for 'none', one element otherwise) and `stats`.
 */
export function crossEntropyForward(dev: Device, x: View, targets: View, out: Binding, outOff: number, stats: Binding, rows: number, c: number, reduction: Reduction, ignore: number): void {
  const dtype = storageType(x.dtype);
  if (rows > 0 && c > 0) {
    const { kernel, workgroups } = rowKernel(dev, 'cross_entropy', source, 'forward_rows', dtype, rows, c);
    dev.dispatch(kernel, [x.buffer, targets.buffer, out, stats], uniforms(rows, c, reduction, ignore, { x: x.offset, t: targets.offset, o: outOff }), workgroups);
  }
  if (reduction !== 'none') {
    const WG = rowWorkgroup(rows, dev.caps);
    const k = dev.pipelines.get('cross_entropy.forward_reduce', source, { dtype, entryPoint: 'forward_reduce', constants: { WG } });
    dev.dispatch(k, [stats, targets.buffer, out], uniforms(rows, c, reduction, ignore, { x: 0, t: targets.offset, o: outOff }), [1]);
  }
}

/** dx [rows, c] from the logits, targets, forward statistics and the loss gradient g. */
export function crossEntropyBackward(dev: Device, x: View, targets: View, stats: Binding, g: View, dx: View, rows: number, c: number, reduction: Reduction, ignore: number): void {
  if (rows === 0 || c === 0) return;
  const { kernel, workgroups } = rowKernel(dev, 'cross_entropy', source, 'backward', storageType(x.dtype), rows, c);
  dev.dispatch(kernel, [x.buffer, targets.buffer, stats, g.buffer, dx.buffer], uniforms(rows, c, reduction, ignore, { x: x.offset, t: targets.offset, g: g.offset, o: dx.offset }), workgroups);
}
