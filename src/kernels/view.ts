import type { DType } from '../dtype.js';
import { GpuError } from '../errors.js';

/** What a kernel needs to address a tensor: memory plus a strided layout (in elements). */
export interface View {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
}

/** Highest rank the strided kernels address (HLIP's patchify view is rank 8). */
export const MAX_RANK = 8;

/**
 * Drops size-1 dims and merges dims that are contiguous with each other in every given layout, so
 * kernels do fewer div/mods per element. All views must have the same shape.
 */
export function coalesce(shape: readonly number[], stridesList: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  const strides: number[][] = stridesList.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i] as number;
    if (d === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && stridesList.every((s, k) => (strides[k] as number[])[last] === (s[i] as number) * d)) {
      dims[last] = (dims[last] as number) * d;
      stridesList.forEach((s, k) => ((strides[k] as number[])[last] = s[i] as number));
    } else {
      dims.push(d);
      stridesList.forEach((s, k) => (strides[k] as number[]).push(s[i] as number));
    }
  }
  if (dims.length > MAX_RANK) throw new GpuError(`strided kernels address at most ${MAX_RANK} dimensions, got ${dims.length}`, 'limit');
  return { shape: dims, strides };
}

/** Splits n workgroups into an x×y grid within the per-dimension limit. */
export function grid(n: number, maxPerDim: number): [number, number] {
  if (n <= maxPerDim) return [n, 1];
  const y = Math.ceil(n / maxPerDim);
  return [Math.ceil(n / y), y];
}

/** Builds a uniform block: u32/i32/f32 fields packed into 4-byte slots (std140 rules are the caller's). */
export class Uniforms {
  private readonly buf: ArrayBuffer;
  private readonly u32: Uint32Array;
  private readonly f32: Float32Array;
  private readonly i32: Int32Array;
  private n = 0;
  constructor(slots = 64) {
    this.buf = new ArrayBuffer(slots * 4);
    this.u32 = new Uint32Array(this.buf);
    this.f32 = new Float32Array(this.buf);
    this.i32 = new Int32Array(this.buf);
  }
  u(...v: number[]): this {
    for (const x of v) this.u32[this.n++] = x >>> 0;
    return this;
  }
  i(...v: number[]): this {
    for (const x of v) this.i32[this.n++] = x | 0;
    return this;
  }
  f(...v: number[]): this {
    for (const x of v) this.f32[this.n++] = x;
    return this;
  }
  /** Pads to a multiple of `slots` 4-byte slots (16 bytes = 4 for vec4 alignment). */
  align(slots = 4): this {
    while (this.n % slots) this.u32[this.n++] = 0;
    return this;
  }
  /** A fixed-size u32 array of `len` entries (padded with `fill`), for vec4<u32> arrays. */
  arr(values: readonly number[], len: number, fill = 0): this {
    for (let k = 0; k < len; k++) this.u32[this.n++] = (values[k] ?? fill) >>> 0;
    return this;
  }
  bytes(): Uint8Array {
    const n = Math.max(16, Math.ceil(this.n / 4) * 16);
    return new Uint8Array(this.buf, 0, n);
  }
}
