import source from '../../shaders/normalize.wgsl';
import type { Device } from '../gpu/device.js';
import { rowKernel, storageType } from './rows.js';
import { Uniforms, type View } from './view.js';

function params(rows: number, n: number, eps: number, offs: readonly number[]): Uint8Array {
  return new Uniforms(8).u(rows, n).f(eps).u(0).u(offs[0] ?? 0, offs[1] ?? 0, offs[2] ?? 0, 0).bytes();
}

/** y = x / max(‖x‖, eps) over the last axis; x and y contiguous [rows, n]. */
export function l2NormalizeForward(dev: Device, x: View, y: View, rows: number, n: number, eps: number): void {
  if (rows === 0 || n === 0) return;
  const { kernel, workgroups } = rowKernel(dev, 'normalize', source, 'forward', storageType(x.dtype), rows, n);
  dev.dispatch(kernel, [x.buffer, y.buffer], params(rows, n, eps, [x.offset, y.offset]), workgroups);
}

/** dx from the input x and the output gradient g (contiguous [rows, n]). */
export function l2NormalizeBackward(dev: Device, x: View, g: View, dx: View, rows: number, n: number, eps: number): void {
  if (rows === 0 || n === 0) return;
  const { kernel, workgroups } = rowKernel(dev, 'normalize', source, 'backward', storageType(x.dtype), rows, n);
  dev.dispatch(kernel, [x.buffer, g.buffer, dx.buffer], params(rows, n, eps, [x.offset, g.offset, dx.offset]), workgroups);
}
