import source from '../../shaders/softmax.wgsl';
import type { Device } from '../gpu/device.js';
import { rowKernel, storageType } from './rows.js';
import { Uniforms, type View } from './view.js';

function params(rows: number, n: number, log: boolean, offs: readonly number[]): Uint8Array {
  return new Uniforms(8).u(rows, n, log ? 1 : 0, 0).u(offs[0] ?? 0, offs[1] ?? 0, offs[2] ?? 0, 0).bytes();
}

/** y = softmax(x) (or log-softmax) over the last axis; x and y are contiguous [rows, n]. */
export function softmaxForward(dev: Device, x: View, y: View, rows: number, n: number, log: boolean): void {
  if (rows === 0 || n === 0) return;
  const { kernel, workgroups } = rowKernel(dev, 'softmax', source, 'forward', storageType(x.dtype), rows, n);
  dev.dispatch(kernel, [x.buffer, y.buffer], params(rows, n, log, [x.offset, y.offset]), workgroups);
}

/** dx from the forward output y and the output gradient g, all contiguous [rows, n]. */
export function softmaxBackward(dev: Device, y: View, g: View, dx: View, rows: number, n: number, log: boolean): void {
  if (rows === 0 || n === 0) return;
  const { kernel, workgroups } = rowKernel(dev, 'softmax', source, 'backward', storageType(y.dtype), rows, n);
  dev.dispatch(kernel, [y.buffer, g.buffer, dx.buffer], params(rows, n, log, [y.offset, g.offset, dx.offset]), workgroups);
}
