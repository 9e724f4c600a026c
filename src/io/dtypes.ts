import { DTypeError, HlipError } from '../errors.js';
import { f16BitsToF32, f32ToF16Bits } from '../dtype.js';
import { allocBytes, noteAllocation } from './limits.js';

/** Element types of stored tensors, named as safetensors names them (PyTorch storages map onto these). */
export type StDType =
  | 'BOOL' | 'U8' | 'I8' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64'
  | 'F8_E4M3' | 'F8_E5M2';

export const ST_DTYPE_BYTES: Readonly<Record<StDType, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

export function isStDType(s: unknown): s is StDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ST_DTYPE_BYTES, s);
}

const FLOATS: ReadonlySet<StDType> = new Set<StDType>(['F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2']);
export function isFloatDType(d: StDType): boolean {
  return FLOATS.has(d);
}

// Typed-array views assume a little-endian host, as every browser and Node platform we target is.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLE(): void {
  if (!LITTLE_ENDIAN) throw new HlipError('io', 'tensor decoding needs a little-endian host');
}

/** A typed-array-compatible copy when `bytes` is not aligned to the element size. */
function aligned(bytes: Uint8Array, elem: number, source: string): Uint8Array {
  if (bytes.byteOffset % elem === 0) return bytes;
  const copy = allocBytes(bytes.byteLength, 'aligned copy', source);
  copy.set(bytes);
  return copy;
}

function numelOf(bytes: Uint8Array, dtype: StDType, source: string): number {
  const e = ST_DTYPE_BYTES[dtype];
  if (bytes.byteLength % e !== 0) throw new HlipError('format', `${bytes.byteLength} bytes is not a whole number of ${dtype} elements`, { source });
  return bytes.byteLength / e;
}

let f16Table: Float32Array | null = null;
function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

function view(bytes: Uint8Array, dtype: StDType, source: string) {
  assertLE();
  const e = ST_DTYPE_BYTES[dtype];
  const n = numelOf(bytes, dtype, source);
  const b = aligned(bytes, e, source);
  return { n, b, buf: b.buffer, off: b.byteOffset };
}

function outArray<T>(n: number, bytesPer: number, what: string, source: string, make: (n: number) => T): T {
  noteAllocation(n * bytesPer, what);
  if (n * bytesPer > 2 ** 31 - 1) throw new HlipError('limit', `${what}: ${n} elements are too many for one array`, { source });
  return make(n);
}

/** Decode raw little-endian bytes of `dtype` to float32 (I64/U64 beyond ±2^53 are refused). */
export function decodeFloat32(bytes: Uint8Array, dtype: StDType, source = '<tensor>'): Float32Array {
  const { n, buf, off } = view(bytes, dtype, source);
  if (dtype === 'F32') return outArray(n, 4, 'float32 decode', source, () => new Float32Array(buf.slice(off, off + n * 4)));
  const out = outArray(n, 4, 'float32 decode', source, (k) => new Float32Array(k));
  switch (dtype) {
    case 'F16': {
      const lut = f16Lut();
      const src = new Uint16Array(buf, off, n);
      for (let i = 0; i < n; i++) out[i] = lut[src[i] as number] as number;
      return out;
    }
    case 'BF16': {
      const src = new Uint16Array(buf, off, n);
      const o32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) o32[i] = (src[i] as number) << 16;
      return out;
    }
    case 'F64':
      out.set(new Float64Array(buf, off, n));
      return out;
    default: {
      const f64 = decodeFloat64(bytes, dtype, source);
      out.set(f64);
      return out;
    }
  }
}

function int64Pairs(buf: ArrayBufferLike, off: number, n: number) {
  return { lo: new Uint32Array(buf, off, n * 2), hi: new Int32Array(buf, off, n * 2) };
}

/** Decode to float64; 64-bit integers must lie within ±2^53 (exactly representable). */
export function decodeFloat64(bytes: Uint8Array, dtype: StDType, source = '<tensor>'): Float64Array {
  const { n, buf, off } = view(bytes, dtype, source);
  const out = outArray(n, 8, 'float64 decode', source, (k) => new Float64Array(k));
  switch (dtype) {
    case 'F64': out.set(new Float64Array(buf, off, n)); return out;
    case 'F32': out.set(new Float32Array(buf, off, n)); return out;
    case 'F16': case 'BF16': out.set(decodeFloat32(bytes, dtype, source)); return out;
    case 'I32': out.set(new Int32Array(buf, off, n)); return out;
    case 'U32': out.set(new Uint32Array(buf, off, n)); return out;
    case 'I16': out.set(new Int16Array(buf, off, n)); return out;
    case 'U16': out.set(new Uint16Array(buf, off, n)); return out;
    case 'I8': out.set(new Int8Array(buf, off, n)); return out;
    case 'U8': case 'BOOL': out.set(new Uint8Array(buf, off, n)); return out;
    case 'I64': case 'U64': {
      const { lo, hi } = int64Pairs(buf, off, n);
      const signed = dtype === 'I64';
      for (let i = 0; i < n; i++) {
        const l = lo[2 * i] as number;
        const h = signed ? (hi[2 * i + 1] as number) : (lo[2 * i + 1] as number);
        if (h >= 0x200000 || h < -0x200000) throw new DTypeError(`${source}: ${dtype} value at index ${i} exceeds ±2^53 and cannot be converted exactly`);
        out[i] = h * 4294967296 + l;
      }
      return out;
    }
    default:
      throw new DTypeError(`${source}: decoding ${dtype} is not supported`);
  }
}

/** Decode an integer (or BOOL) tensor to int32; 64-bit values must fit in int32. */
export function decodeInt32(bytes: Uint8Array, dtype: StDType, source = '<tensor>'): Int32Array {
  const { n, buf, off } = view(bytes, dtype, source);
  if (dtype === 'I32') return outArray(n, 4, 'int32 decode', source, () => new Int32Array(buf.slice(off, off + n * 4)));
  if (isFloatDType(dtype)) throw new DTypeError(`${source}: cannot decode floating ${dtype} as int32`);
  const out = outArray(n, 4, 'int32 decode', source, (k) => new Int32Array(k));
  switch (dtype) {
    case 'I16': out.set(new Int16Array(buf, off, n)); return out;
    case 'U16': out.set(new Uint16Array(buf, off, n)); return out;
    case 'I8': out.set(new Int8Array(buf, off, n)); return out;
    case 'U8': case 'BOOL': out.set(new Uint8Array(buf, off, n)); return out;
    case 'U32': {
      const src = new Uint32Array(buf, off, n);
      for (let i = 0; i < n; i++) {
        const v = src[i] as number;
        if (v > 0x7fffffff) throw new DTypeError(`${source}: U32 value ${v} at index ${i} does not fit in int32`);
        out[i] = v;
      }
      return out;
    }
    case 'I64': case 'U64': {
      const { lo, hi } = int64Pairs(buf, off, n);
      for (let i = 0; i < n; i++) {
        const l = lo[2 * i] as number;
        const h = hi[2 * i + 1] as number;
        const ok = dtype === 'I64' ? (h === 0 && l <= 0x7fffffff) || (h === -1 && l >= 0x80000000) : h === 0 && l <= 0x7fffffff;
        if (!ok) throw new DTypeError(`${source}: ${dtype} value at index ${i} does not fit in int32`);
        out[i] = l | 0;
      }
      return out;
    }
    default:
      throw new DTypeError(`${source}: decoding ${dtype} as int32 is not supported`);
  }
}

// ---- encoding (host arrays -> stored bytes) ----

export type HostData = Float32Array | Float64Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array | BigInt64Array | BigUint64Array;

function naturalDType(a: HostData): StDType | 'raw' {
  if (a instanceof Float32Array) return 'F32';
  if (a instanceof Float64Array) return 'F64';
  if (a instanceof Int32Array) return 'I32';
  if (a instanceof Uint32Array) return 'U32';
  if (a instanceof Int16Array) return 'I16';
  if (a instanceof Uint16Array) return 'U16';
  if (a instanceof Int8Array) return 'I8';
  if (a instanceof BigInt64Array) return 'I64';
  if (a instanceof BigUint64Array) return 'U64';
  return 'raw';
}

const f32b = new Float32Array(1);
const u32b = new Uint32Array(f32b.buffer);
/** float32 -> bfloat16 bits, round to nearest even; NaN stays NaN. */
export function f32ToBf16Bits(v: number): number {
  f32b[0] = v;
  const x = u32b[0] as number;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

const INT_RANGE: Partial<Record<StDType, [number, number]>> = {
  U8: [0, 255], I8: [-128, 127], I16: [-32768, 32767], U16: [0, 65535], I32: [-(2 ** 31), 2 ** 31 - 1], U32: [0, 2 ** 32 - 1],
};

/**
 * Stored bytes of `data` as `dtype`. A Uint8Array is taken as raw bytes already in `dtype`; other
 * typed arrays are converted element by element (floats rounded to nearest even; integers range-checked).
 */
export function encodeTensor(data: HostData, dtype: StDType, what = '<tensor>'): Uint8Array {
  assertLE();
  const nat = naturalDType(data);
  if (nat === 'raw' || nat === dtype) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const n = data.length;
  const get: (i: number) => number | bigint = (i) => data[i] as number | bigint;
  const num = (i: number): number => {
    const v = get(i);
    return typeof v === 'bigint' ? Number(v) : v;
  };
  const out = allocBytes(n * ST_DTYPE_BYTES[dtype], 'encode', what);
  const buf = out.buffer;
  switch (dtype) {
    case 'F32': { const o = new Float32Array(buf); for (let i = 0; i < n; i++) o[i] = num(i); break; }
    case 'F64': { const o = new Float64Array(buf); for (let i = 0; i < n; i++) o[i] = num(i); break; }
    case 'F16': { const o = new Uint16Array(buf); for (let i = 0; i < n; i++) o[i] = f32ToF16Bits(num(i)); break; }
    case 'BF16': { const o = new Uint16Array(buf); for (let i = 0; i < n; i++) o[i] = f32ToBf16Bits(num(i)); break; }
    case 'BOOL': { for (let i = 0; i < n; i++) out[i] = num(i) !== 0 ? 1 : 0; break; }
    case 'I64': case 'U64': {
      const o = dtype === 'I64' ? new BigInt64Array(buf) : new BigUint64Array(buf);
      for (let i = 0; i < n; i++) {
        const v = get(i);
        const b = typeof v === 'bigint' ? v : Number.isInteger(v) ? BigInt(v) : null;
        if (b === null || (dtype === 'U64' ? b < 0n || b >= 2n ** 64n : b < -(2n ** 63n) || b >= 2n ** 63n)) throw new DTypeError(`${what}: value ${String(v)} at index ${i} is not a valid ${dtype}`);
        o[i] = b;
      }
      break;
    }
    default: {
      const range = INT_RANGE[dtype];
      if (!range) throw new DTypeError(`${what}: encoding to ${dtype} is not supported`);
      const o = dtype === 'U8' ? out : dtype === 'I8' ? new Int8Array(buf) : dtype === 'I16' ? new Int16Array(buf) : dtype === 'U16' ? new Uint16Array(buf) : dtype === 'I32' ? new Int32Array(buf) : new Uint32Array(buf);
      for (let i = 0; i < n; i++) {
        const v = num(i);
        if (!Number.isInteger(v) || v < range[0] || v > range[1]) throw new DTypeError(`${what}: value ${v} at index ${i} is not a valid ${dtype}`);
        o[i] = v;
      }
    }
  }
  return out;
}

/** Convert stored bytes from one dtype to another (through float64 / int paths; lossless where possible). */
export function convertBytes(bytes: Uint8Array, from: StDType, to: StDType, source = '<tensor>'): Uint8Array {
  if (from === to) return bytes;
  if (from === 'I64' || from === 'U64') {
    if (to === 'I32' || to === 'U32' || to === 'I16' || to === 'U16' || to === 'I8' || to === 'U8' || to === 'BOOL') return encodeTensor(decodeInt32(bytes, from, source), to, source);
    return encodeTensor(decodeFloat64(bytes, from, source), to, source);
  }
  if (from === 'F16' || from === 'BF16') return encodeTensor(decodeFloat32(bytes, from, source), to, source);
  return encodeTensor(decodeFloat64(bytes, from, source), to, source);
}
