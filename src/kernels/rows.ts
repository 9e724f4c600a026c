import { BYTES, type DType } from '../dtype.js';
import type { Binding, Device, DeviceCaps } from '../gpu/device.js';
import type { Kernel } from '../gpu/pipeline.js';
import { grid, type View } from './view.js';

/**
 * Shared by the row kernels (softmax, layerNorm, crossEntropy, l2Normalize) over the last axis of a
 * contiguous [rows, n] tensor. They come in two families: 'workgroup' (one workgroup per row, tree
 * reduction in workgroup memory) and 'serial' (one invocation per row, SERIAL_WG rows per workgroup,
 * plain loops). On CPU adapters (llvmpipe, SwiftShader) a workgroup runs as a loop over its
 * invocations and every barrier is a switch between them, so there the serial family is far faster
 * for all but a few very long rows. On GPUs the workgroup family is the default; only very short
 * rows, where most of its invocations would idle, go serial.
 */
export type RowVariant = 'serial' | 'workgroup';

/** Invocations (= rows) per workgroup of the serial family. */
export const SERIAL_WG = 64;

// On CPU adapters the serial family won at every measured shape (LayerNorm fwd+bwd, 4608×72: llvmpipe
// about 15×, SwiftShader about 85×; 576×768: 4× and 16×) except a handful of very long rows (2×65536),
// where it leaves all but a few SIMD lanes idle and the workgroup family's barriers are amortised.
const CPU_WORKGROUP_MAX_ROWS = 4;
const CPU_WORKGROUP_MIN_N = 2048;
// On GPUs only rows too short to keep a 32-wide workgroup busy go serial (not measured here: no GPU).
const GPU_SERIAL_MAX_N = 32;

const isCpu = new WeakMap<Device, boolean>();

/** Whether the adapter is a CPU implementation of WebGPU (Mesa llvmpipe/lavapipe, SwiftShader). */
export function cpuAdapter(dev: Device): boolean {
  let cpu = isCpu.get(dev);
  if (cpu === undefined) {
    const a = dev.adapter;
    cpu = a.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
    isCpu.set(dev, cpu);
  }
  return cpu;
}

const forced = new WeakMap<Device, RowVariant>();

/** Pins the row kernels of `dev` to one family (tests and benchmarks); 'auto' restores the choice by shape. */
export function setRowVariant(dev: Device, v: RowVariant | 'auto'): void {
  if (v === 'auto') forced.delete(dev);
  else forced.set(dev, v);
}

/** The family for `rows` rows of length n on this device. */
export function rowVariant(dev: Device, rows: number, n: number): RowVariant {
  const f = forced.get(dev);
  if (f) return f;
  if (cpuAdapter(dev)) return rows <= CPU_WORKGROUP_MAX_ROWS && n > CPU_WORKGROUP_MIN_N ? 'workgroup' : 'serial';
  return n <= GPU_SERIAL_MAX_N ? 'serial' : 'workgroup';
}

/**
 * The pipeline and workgroup grid of a row kernel: entry point `entry` of `source` (the workgroup
 * family) or `${entry}_serial` (the serial family), chosen by rowVariant.
 */
export function rowKernel(dev: Device, family: string, source: string, entry: string, dtype: 'f32' | 'f16', rows: number, n: number): { kernel: Kernel; workgroups: [number, number] } {
  const serial = rowVariant(dev, rows, n) === 'serial';
  const ep = serial ? `${entry}_serial` : entry;
  const WG = serial ? SERIAL_WG : rowWorkgroup(n, dev.caps);
  const kernel = dev.pipelines.get(`${family}.${ep}`, source, { dtype, entryPoint: ep, constants: { WG } });
  return { kernel, workgroups: grid(serial ? Math.ceil(rows / SERIAL_WG) : rows, dev.caps.maxWorkgroupsPerDim) };
}

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
