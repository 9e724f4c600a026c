// safetensors read/write in memory and through Blob sources (runs in Node and Chromium).
import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../src/dtype.js';
import { DTypeError, FormatError, HlipError } from '../src/errors.js';
import { ST_DTYPE_BYTES, convertBytes, decodeFloat32, decodeFloat64, decodeInt32, encodeTensor, f32ToBf16Bits, type StDType } from '../src/io/dtypes.js';
import { openSafetensors, parseSafetensors, planSafetensors, safetensorsChunks, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import type { ByteSource } from '../src/io/source.js';
import { bytesOf, concat, rng } from './helpers/io_builders.js';

const bf16 = (v: number) => {
  const u = new Uint32Array([f32ToBf16Bits(v) << 16]);
  return new Float32Array(u.buffer)[0] as number;
};

function sample(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() - 0.5) * 2 ** Math.floor(r() * 20 - 10);
  return a;
}

/** Raw bytes from a header + JSON text, for validation tests. */
function rawFile(header: unknown, data: Uint8Array, lenOverride?: bigint): Uint8Array {
  const j = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const h = new Uint8Array(8);
  new DataView(h.buffer).setBigUint64(0, lenOverride ?? BigInt(j.length), true);
  return concat([h, j, data]);
}

describe('safetensors round trip (in memory)', () => {
  it('every dtype: write, parse, raw bytes identical, decoders exact', () => {
    const vals = [0, 1, -1, 2, 3, 100, -7, 12];
    const f = sample(12, 1);
    const tensors: Record<string, TensorToWrite> = {
      f32: { dtype: 'F32', shape: [3, 4], data: f },
      f16: { dtype: 'F16', shape: [12], data: f },
      bf16: { dtype: 'BF16', shape: [2, 2, 3], data: f },
      f64: { dtype: 'F64', shape: [12], data: Float64Array.from(f, (x) => x / 3) },
      i64: { dtype: 'I64', shape: [8], data: BigInt64Array.from(vals.map(BigInt)) },
      i32: { dtype: 'I32', shape: [8], data: Int32Array.from(vals) },
      i16: { dtype: 'I16', shape: [8], data: Int32Array.from(vals) },
      i8: { dtype: 'I8', shape: [8], data: Int32Array.from(vals) },
      u8: { dtype: 'U8', shape: [4], data: Int32Array.from([0, 1, 2, 255]) },
      u16: { dtype: 'U16', shape: [2], data: Int32Array.from([0, 65535]) },
      u32: { dtype: 'U32', shape: [2], data: Float64Array.from([0, 2 ** 31 - 1]) },
      u64: { dtype: 'U64', shape: [2], data: BigUint64Array.from([0n, 5n]) },
      bool: { dtype: 'BOOL', shape: [3], data: Int32Array.from([0, 1, 5]) },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([0.25]) },
      empty: { dtype: 'F16', shape: [0, 3], data: new Float32Array(0) },
    };
    const file = writeSafetensors(tensors, { format: 'pt', note: 'x' });
    const st = parseSafetensors(file);
    expect(st.metadata).toEqual({ format: 'pt', note: 'x' });
    expect(new Set(st.names())).toEqual(new Set(Object.keys(tensors)));
    const headerLen = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    for (const [name, t] of Object.entries(tensors)) {
      const e = st.entry(name);
      expect(e.dtype).toBe(t.dtype);
      expect(e.shape).toEqual(t.shape);
      expect(e.byteOffset % ST_DTYPE_BYTES[t.dtype]).toBe(0); // aligned to its element size
      expect(e.byteLength).toBe(t.shape.reduce((a, b) => a * b, 1) * ST_DTYPE_BYTES[t.dtype]);
    }
    expect(Array.from(st.float32Sync('f32'))).toEqual(Array.from(f));
    expect(Array.from(st.float32Sync('f16'))).toEqual(Array.from(f, (x) => f16BitsToF32(f32ToF16Bits(x))));
    expect(Array.from(st.float32Sync('bf16'))).toEqual(Array.from(f, bf16));
    expect(Array.from(decodeFloat64(st.bytesSync('f64'), 'F64'))).toEqual(Array.from(f, (x) => x / 3));
    for (const n of ['i64', 'i32', 'i16', 'i8']) expect(Array.from(st.int32Sync(n)), n).toEqual(vals);
    expect(Array.from(st.float32Sync('i64'))).toEqual(vals);
    expect(Array.from(st.int32Sync('u8'))).toEqual([0, 1, 2, 255]);
    expect(Array.from(st.int32Sync('u16'))).toEqual([0, 65535]);
    expect(Array.from(st.int32Sync('u32'))).toEqual([0, 2 ** 31 - 1]);
    expect(Array.from(st.int32Sync('u64'))).toEqual([0, 5]);
    expect(Array.from(st.int32Sync('bool'))).toEqual([0, 1, 1]);
    expect(Array.from(st.float32Sync('scalar'))).toEqual([0.25]);
    expect(st.float32Sync('empty').length).toBe(0);
    // re-serialising the parsed tensors gives the same file
    const again = writeSafetensors(st.names().map((n) => [n, { dtype: st.entry(n).dtype, shape: st.entry(n).shape, data: st.bytesSync(n) }] as const), st.metadata as Record<string, string>);
    expect(again).toEqual(file);
  });

  it('rounding: F16 and BF16 round to nearest even, keep NaN/Inf/-0', () => {
    const special = new Float32Array([NaN, Infinity, -Infinity, -0, 65520, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38]);
    const h = decodeFloat32(encodeTensor(special, 'F16'), 'F16');
    expect(Number.isNaN(h[0])).toBe(true);
    expect(Array.from(h.slice(1))).toEqual([Infinity, -Infinity, -0, Infinity, 1, 1 + 2 * 2 ** -10, 0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity]);
    const b = decodeFloat32(encodeTensor(special, 'BF16'), 'BF16');
    expect(Number.isNaN(b[0])).toBe(true);
    expect(Array.from(b.slice(1, 4))).toEqual([Infinity, -Infinity, -0]);
    expect(b[8]).toBe(1); // 1 + 2^-8 is a tie -> even (1)
    expect(b[9]).toBe(1 + 2 ** -6); // 1 + 3*2^-8 is a tie -> even (1 + 4*2^-8)
    expect(b[10]).toBe(bf16(3.4e38));
  });

  it('int64: range-checked to int32 and float64; conversions between dtypes', () => {
    const big = encodeTensor(BigInt64Array.from([1n, -(2n ** 31n), 2n ** 31n]), 'I64');
    expect(() => decodeInt32(big, 'I64')).toThrow(DTypeError);
    expect(Array.from(decodeInt32(big.subarray(0, 16), 'I64'))).toEqual([1, -(2 ** 31)]);
    expect(Array.from(decodeFloat64(big, 'I64'))).toEqual([1, -(2 ** 31), 2 ** 31]);
    const huge = encodeTensor(BigInt64Array.from([2n ** 53n + 1n]), 'I64');
    expect(() => decodeFloat64(huge, 'I64')).toThrow(DTypeError);
    expect(Array.from(decodeFloat64(encodeTensor(BigInt64Array.from([-(2n ** 52n)]), 'I64'), 'I64'))).toEqual([-(2 ** 52)]);
    expect(() => encodeTensor(new Float32Array([1.5]), 'I32')).toThrow(DTypeError);
    expect(() => encodeTensor(new Int32Array([300]), 'U8')).toThrow(DTypeError);
    expect(() => decodeInt32(encodeTensor(new Float32Array([1]), 'F32'), 'F32')).toThrow(DTypeError);
    const f64 = convertBytes(encodeTensor(Int32Array.from([3, -4]), 'I64'), 'I64', 'F64');
    expect(Array.from(decodeFloat64(f64, 'F64'))).toEqual([3, -4]);
    expect(Array.from(decodeInt32(convertBytes(f64, 'F64', 'I64'), 'I64'))).toEqual([3, -4]);
    expect(Array.from(decodeFloat32(convertBytes(encodeTensor(new Float32Array([0.1]), 'F32'), 'F32', 'BF16'), 'BF16'))).toEqual([bf16(0.1)]);
    // unaligned source bytes decode through an aligned copy
    const buf = new Uint8Array(9);
    buf.set(bytesOf(new Float32Array([1.5, -2])), 1);
    expect(Array.from(decodeFloat32(buf.subarray(1), 'F32'))).toEqual([1.5, -2]);
  });

  it('streamed chunks equal the in-memory file; lazy data functions are called one at a time', async () => {
    const order: string[] = [];
    const t = (name: string, n: number): [string, TensorToWrite] => [name, { dtype: 'F32', shape: [n], data: () => (order.push(name), sample(n, n)) }];
    const tensors = [t('a', 3), t('b', 5), ['c', { dtype: 'F64', shape: [2], data: new Float64Array([1, 2]) }] as [string, TensorToWrite]];
    const parts: Uint8Array[] = [];
    for await (const c of safetensorsChunks(tensors, null)) parts.push(c);
    const file = concat(parts);
    expect(order).toEqual(['a', 'b']);
    expect(file.byteLength).toBe(planSafetensors(tensors).totalBytes);
    const st = parseSafetensors(file);
    expect(st.entry('c').byteOffset).toBeLessThan(st.entry('a').byteOffset); // 8-byte dtypes first
    expect(Array.from(st.float32Sync('b'))).toEqual(Array.from(sample(5, 5)));
    expect(() => writeSafetensors(tensors)).toThrow(HlipError);
  });

  it('Blob/File source: header read first, then only the requested tensor range', async () => {
    const file = writeSafetensors({ w: { dtype: 'F32', shape: [1000], data: sample(1000, 3) }, b: { dtype: 'F16', shape: [10], data: sample(10, 4) } });
    const blob = new Blob([file]);
    const reads: [number, number][] = [];
    const counting: ByteSource = {
      name: 'counted.safetensors',
      size: blob.size,
      read: async (o, l) => (reads.push([o, l]), new Uint8Array(await blob.slice(o, o + l).arrayBuffer())),
    };
    const st = await openSafetensors(counting);
    const headerBytes = reads.reduce((a, [, l]) => a + l, 0);
    expect(headerBytes).toBeLessThan(200);
    const b = await st.float32('b');
    expect(reads.at(-1)).toEqual([st.entry('b').byteOffset, 20]);
    expect(Array.from(b)).toEqual(Array.from(sample(10, 4), (x) => f16BitsToF32(f32ToF16Bits(x))));
    expect(reads.reduce((a, [, l]) => a + l, 0)).toBe(headerBytes + 20);
    const viaBlob = await openSafetensors(new Blob([file]), 'model.safetensors');
    expect(Array.from(await viaBlob.float32('w'))).toEqual(Array.from(sample(1000, 3)));
    // A File names itself in errors.
    const err = await openSafetensors(new File([file.subarray(0, 40)], 'cut.safetensors')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toContain('cut.safetensors');
    const viaBuffer = await openSafetensors(file.buffer as ArrayBuffer);
    expect(viaBuffer.names()).toEqual(st.names());
  });
});

describe('safetensors validation', () => {
  const data = new Uint8Array(16);
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } };
  const cases: [string, Uint8Array][] = [
    ['shorter than 8 bytes', new Uint8Array(5)],
    ['header length past end', rawFile(ok, data, 10_000n)],
    ['header length 2^63', rawFile(ok, data, 2n ** 63n)],
    ['header length above cap', rawFile(ok, data, 200_000_000n)],
    ['not JSON', rawFile('{"a":', data)],
    ['not an object', rawFile('[1,2]', data)],
    ['invalid UTF-8', rawFile('{"\xff":1}'.replace('\xff', '\u00ff'), data).map((b, i) => (i === 10 ? 0xff : b))],
    ['unknown dtype', rawFile({ a: { dtype: 'F128', shape: [2], data_offsets: [0, 8] } }, data)],
    ['size mismatch', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data)],
    ['offsets beyond data', rawFile({ a: { dtype: 'F32', shape: [6], data_offsets: [0, 24] } }, data)],
    ['reversed offsets', rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, data)],
    ['negative dim', rawFile({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data)],
    ['fractional dim', rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, data)],
    ['huge dims overflowing', rawFile({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, data)],
    ['huge dims', rawFile({ a: { dtype: 'F32', shape: [2 ** 26, 2 ** 26], data_offsets: [0, 8] } }, data)],
    ['overlap', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data)],
    ['metadata not strings', rawFile({ __metadata__: { a: 1 } }, data)],
    ['missing data_offsets', rawFile({ a: { dtype: 'F32', shape: [2] } }, data)],
  ];
  for (const [what, file] of cases) {
    it(`rejects: ${what}`, () => {
      expect(() => parseSafetensors(file, 'bad.safetensors')).toThrow(FormatError);
      try {
        parseSafetensors(file, 'bad.safetensors');
      } catch (e) {
        expect((e as Error).message).toContain('bad.safetensors');
      }
    });
  }

  it('accepts the valid variant, zero-length tensors anywhere and a header padded with spaces', () => {
    const st = parseSafetensors(rawFile(ok, data));
    expect(st.names()).toEqual(['a', 'b']);
    const z = parseSafetensors(rawFile({ z: { dtype: 'F64', shape: [2 ** 40, 0], data_offsets: [16, 16] }, ...ok }, data));
    expect(z.entry('z').byteLength).toBe(0);
    const padded = parseSafetensors(rawFile(JSON.stringify(ok) + '       ', data));
    expect(padded.names().length).toBe(2);
  });

  it('F8 tensors parse and are refused by the decoders with a DTypeError', () => {
    const st = parseSafetensors(rawFile({ q: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)));
    expect(st.entry('q').byteLength).toBe(4);
    expect(() => st.float32Sync('q')).toThrow(DTypeError);
    expect(() => st.int32Sync('q')).toThrow(DTypeError);
  });

  it('odd tensor names (__proto__, constructor, empty, unicode) survive a round trip', () => {
    const names = ['__proto__', 'constructor', '', 'é€.weight', 'toString'];
    const file = writeSafetensors(names.map((n, i) => [n, { dtype: 'F32', shape: [1], data: new Float32Array([i]) }] as const));
    const st = parseSafetensors(file);
    expect(st.names().sort()).toEqual([...names].sort());
    names.forEach((n, i) => expect(Array.from(st.float32Sync(n))).toEqual([i]));
  });

  it('writer refuses bad input with typed errors', () => {
    expect(() => writeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(FormatError);
    expect(() => writeSafetensors({ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(FormatError);
    expect(() => writeSafetensors([['x', { dtype: 'F32', shape: [1], data: new Float32Array(1) }], ['x', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]])).toThrow(FormatError);
    expect(() => writeSafetensors({ a: { dtype: 'X' as StDType, shape: [1], data: new Float32Array(1) } })).toThrow(FormatError);
    expect(() => writeSafetensors({ a: { dtype: 'F32', shape: [-1], data: new Float32Array(1) } })).toThrow(FormatError);
  });
});
