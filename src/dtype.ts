import { DTypeError } from './errors.js';

/** Element types a tensor can hold. Floating tensors compute in f32; f16 is a storage type. */
export type DType = 'f32' | 'f16' | 'i32';
export type FloatDType = 'f32' | 'f16';

export const BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4 };

export function isFloat(d: DType): d is FloatDType {
  return d === 'f32' || d === 'f16';
}

export function assertFloat(d: DType, what: string): asserts d is FloatDType {
  if (!isFloat(d)) throw new DTypeError(`${what} needs a floating tensor, got ${d}`);
}

/** The JS array type a dtype reads back as (f16 is widened to f32). */
export type HostArray<D extends DType> = D extends 'i32' ? Int32Array : Float32Array;

// f16 <-> f32 bit conversion (round to nearest even), for uploads and readbacks of f16 tensors.
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f32ToF16Bits(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
