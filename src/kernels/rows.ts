import { BYTES, type DType } from '../dtype.js';
import type { Binding, Device, DeviceCaps } from '../gpu/device.js';
import type { View } from './view.js';

/**
 * Shared by the row kernels (softmax, layerNorm, crossEntropy, l2Normalize): one workgroup per row
 * of a contiguous [rows, n] tensor, with a tree reduction in workgroup memory.
 */

/** Workgroup size for rows of length n: a power of two in [32, 256], within the adapter's limit. */
export function rowWorkgroup(n: number, caps: DeviceCaps): number {
  let cap = 256;
  while (cap > caps.maxInvocations) cap >>= 1;
  let wg = 32;
  while (wg < n && wg < cap) wg <<= 1;
  return Math.min(wg, cap);
}

/**
 * Byte offset of the f32 statistics an op keeps after its output (layerNorm's mean/rstd,
 * crossEntropy's per-row logsumexp). 256 is the largest minStorageBufferOffsetAlignment WebGPU allows.
 */
export function statsOffset(elems: number, dtype: DType): number {
  return Math.max(256, Math.ceil((elems * BYTES[dtype]) / 256) * 256);
}

/** Total elements of `dtype` to allocate for `elems` outputs followed by `statsFloats` f32 values. */
export function elemsWithStats(elems: number, dtype: DType, statsFloats: number): number {
  return Math.ceil((statsOffset(elems, dtype) + Math.max(1, statsFloats) * 4) / BYTES[dtype]);
}

/**
 * The two non-overlapping bindings of an output that carries statistics: its elements (from byte 0,
 * so the view's offset must be 0) and the f32 tail. Both may be written in one dispatch because they
 * do not overlap.
 */
export function splitStats(v: View, statsFloats: number): { main: Binding; stats: Binding } {
  const elems = v.shape.reduce((a, b) => a * b, 1);
  const off = statsOffset(elems, v.dtype);
  return {
    main: { buffer: v.buffer, offset: 0, size: Math.max(4, Math.ceil((elems * BYTES[v.dtype]) / 4) * 4) },
    stats: { buffer: v.buffer, offset: off, size: Math.max(4, statsFloats * 4) },
  };
}

// A 16-byte buffer bound where an optional input (layerNorm's weight or bias) is absent: every
// binding an entry point uses must be bound.
const dummies = new WeakMap<Device, GPUBuffer>();
export function dummyBuffer(dev: Device): GPUBuffer {
  let b = dummies.get(dev);
  if (!b) {
    b = dev.gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    dummies.set(dev, b);
  }
  return b;
}

export function storageType(d: DType): 'f32' | 'f16' {
  return d === 'f16' ? 'f16' : 'f32';
}
