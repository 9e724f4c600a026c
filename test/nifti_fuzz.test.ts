// Seeded fuzzing of the NIfTI reader: 10,000 mutated headers and files (NIfTI-1/-2, both byte orders,
// raw and gzip). Every outcome must be a valid volume or a typed HlipError; no case may hang; no
// allocation may exceed what the input could justify (4 bytes of float32 per input byte, times the
// deflate ratio for gzip input).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HlipError } from '../src/errors.js';
import { setAllocationObserver } from '../src/io/limits.js';
import { readNifti } from '../src/io/nifti.js';
import { buildNifti, gzip, sampleValues, type NiftiSpec } from './helpers/nifti_builders.js';

const N = 10_000;
const CASE_MS = 2_000;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const SEEDS: NiftiSpec[] = [
  { dtype: 'int16', dims: [5, 4, 3], values: sampleValues('int16', 60), sclSlope: 1, sclInter: -1024, qformCode: 1, quatern: [0, 0, 1], pixdim: [-1, 0.8, 0.8, 2, 1, 1, 1, 1] },
  { dtype: 'float32', littleEndian: false, dims: [3, 3, 3], values: sampleValues('float32', 27), sformCode: 1, srow: [-1, 0, 0, 5, 0, 1, 0, 6, 0, 0, 2, 7] },
  { version: 2, dtype: 'uint8', dims: [3, 3, 2, 2], values: sampleValues('uint8', 36), qformCode: 2, quatern: [0.5, 0.5, 0.5] },
  { version: 2, littleEndian: false, dtype: 'float64', dims: [2, 3, 4], values: sampleValues('float64', 24), sformCode: 2, srow: [0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0] },
  { dtype: 'int64', dims: [4, 2, 2], values: sampleValues('int64', 16), extension: Uint8Array.from({ length: 36 }, (_, i) => (i === 0 ? 32 : i === 4 ? 6 : i)) },
  { dtype: 'uint16', littleEndian: false, dims: [2, 2, 2, 1, 2], values: sampleValues('uint16', 16), xyztUnits: 1, pixdim: [1, 0.001, 0.001, 0.001, 1, 1, 1, 1] },
];

/** Header fields worth lying about: [offset NIfTI-1, offset NIfTI-2, width in bytes, kind]. */
const FIELDS: [number, number, number, 'int' | 'float'][] = [
  [0, 0, 4, 'int'], [40, 16, 2, 'int'], [42, 24, 2, 'int'], [44, 32, 2, 'int'], [46, 40, 2, 'int'], [48, 48, 2, 'int'], [50, 56, 2, 'int'],
  [70, 12, 2, 'int'], [72, 14, 2, 'int'], [76, 104, 4, 'float'], [80, 112, 4, 'float'], [84, 120, 4, 'float'], [88, 128, 4, 'float'],
  [108, 168, 4, 'float'], [112, 176, 4, 'float'], [116, 184, 4, 'float'], [123, 500, 1, 'int'], [252, 344, 2, 'int'], [254, 348, 2, 'int'],
  [256, 352, 4, 'float'], [260, 360, 4, 'float'], [264, 368, 4, 'float'], [280, 400, 4, 'float'], [300, 440, 4, 'float'], [320, 480, 4, 'float'],
];
const INTS = [0, 1, -1, 2, 3, 7, 8, 255, 256, 348, 352, 540, 32767, -32768, 65535, 2 ** 31 - 1, -(2 ** 31), 1024, 1536, 16, 64];
const FLOATS = [0, -0, 1, -1, 0.5, 352, 352.5, 1e30, -1e30, NaN, Infinity, -Infinity, 2 ** 31, 1e-30, 3.4e38];

function lieAboutField(r: Rand, src: Uint8Array, version: 1 | 2, le: boolean): Uint8Array {
  const b = src.slice();
  const dv = new DataView(b.buffer);
  const k = 1 + int(r, 3);
  for (let n = 0; n < k; n++) {
    const [o1, o2, w1, kind] = pick(r, FIELDS);
    const at = version === 1 ? o1 : o2;
    // NIfTI-2 widens most fields: ints to 8 bytes (dims, vox_offset) and floats to doubles.
    const w = version === 1 ? w1 : at >= 16 && at < 80 ? 8 : at === 168 ? 8 : kind === 'float' ? 8 : w1 === 2 && at >= 344 ? 4 : w1;
    if (at + w > b.length) continue;
    if (kind === 'float' && at !== 168) {
      const v = pick(r, FLOATS);
      if (w === 8) dv.setFloat64(at, v, le);
      else dv.setFloat32(at, v, le);
    } else {
      const v = r() < 0.8 ? pick(r, INTS) : int(r, 2 ** 16) - 2 ** 15;
      if (w === 8) dv.setBigInt64(at, r() < 0.1 ? pick(r, [2n ** 62n, -(2n ** 63n), 2n ** 53n + 1n]) : BigInt(v), le);
      else if (w === 4) (kind === 'float' ? dv.setFloat32(at, v, le) : dv.setInt32(at, v | 0, le));
      else if (w === 2) dv.setInt16(at, v, le);
      else dv.setUint8(at, v & 255);
    }
  }
  return b;
}

function mutateBytes(r: Rand, src: Uint8Array): Uint8Array {
  const b = src.slice();
  switch (int(r, 5)) {
    case 0: {
      const k = 1 + int(r, 6);
      for (let i = 0; i < k && b.length; i++) b[int(r, b.length)]! ^= 1 << int(r, 8);
      return b;
    }
    case 1: {
      const k = 1 + int(r, 8);
      for (let i = 0; i < k && b.length; i++) b[int(r, b.length)] = pick(r, [0, 0xff, 0x7f, 0x80, int(r, 256)]);
      return b;
    }
    case 2: {
      const at = int(r, b.length + 1);
      const ins = Uint8Array.from({ length: 1 + int(r, 32) }, () => int(r, 256));
      const out = new Uint8Array(b.length + ins.length);
      out.set(b.subarray(0, at));
      out.set(ins, at);
      out.set(b.subarray(at), at + ins.length);
      return out;
    }
    case 3: {
      const at = int(r, b.length);
      const len = 1 + int(r, 64);
      const out = new Uint8Array(b.length - Math.min(len, b.length - at));
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + len), at);
      return out;
    }
    default:
      return b.subarray(0, int(r, b.length));
  }
}

let maxAlloc = 0;
beforeAll(() => setAllocationObserver((n) => { if (n > maxAlloc) maxAlloc = n; }));
afterAll(() => setAllocationObserver(null));

describe('NIfTI fuzzing', () => {
  it(`${N} seeded mutated NIfTI headers and files: volumes or typed errors, bounded time and memory`, async () => {
    const r = mulberry32(20250611);
    const seeds = SEEDS.map((s) => ({ spec: s, bytes: buildNifti(s) }));
    const kinds = new Map<string, number>();
    let ok = 0, rejected = 0, maxMs = 0, gzCases = 0;
    const t0 = performance.now();
    for (let c = 0; c < N; c++) {
      const seed = pick(r, seeds);
      const version = seed.spec.version ?? 1;
      const le = seed.spec.littleEndian ?? true;
      const mode = int(r, 10);
      let input: Uint8Array;
      // 0-3: header lies; 4-6: byte mutations; 7-8: lies inside gzip; 9: corrupted gzip bytes.
      if (mode <= 3) input = lieAboutField(r, seed.bytes, version, le);
      else if (mode <= 6) input = mutateBytes(r, seed.bytes);
      else if (mode <= 8) input = await gzip(r() < 0.7 ? lieAboutField(r, seed.bytes, version, le) : mutateBytes(r, seed.bytes));
      else input = mutateBytes(r, await gzip(seed.bytes));
      const isGz = input[0] === 0x1f && input[1] === 0x8b;
      if (isGz) gzCases++;
      maxAlloc = 0;
      const start = performance.now();
      try {
        const v = await readNifti(input, { name: `fuzz-${c}.nii`, nonFinite: r() < 0.5 ? 'zero' : 'error', orientation: r() < 0.5 ? 'native' : 'RPI' });
        ok++;
        if (v.data.length !== v.dims[0] * v.dims[1] * v.dims[2]) throw new Error(`case ${c}: data length ${v.data.length} vs dims ${v.dims}`);
        if (!v.spacing.every((s) => Number.isFinite(s) && s > 0) || !v.affine.every(Number.isFinite)) throw new Error(`case ${c}: invalid spacing/affine`);
        for (const x of v.data) if (!Number.isFinite(x)) throw new Error(`case ${c}: non-finite voxel returned`);
      } catch (e) {
        if (!(e instanceof HlipError)) throw new Error(`case ${c} (mode ${mode}): untyped ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
        if (!e.message.includes(`fuzz-${c}.nii`)) throw new Error(`case ${c}: error does not name the file: ${e.message}`);
        rejected++;
        kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
      }
      const ms = performance.now() - start;
      maxMs = Math.max(maxMs, ms);
      if (ms > CASE_MS) throw new Error(`case ${c}: took ${ms.toFixed(0)} ms`);
      const bound = (isGz ? 1100 : 1) * 4 * input.byteLength + 65536;
      if (maxAlloc > bound) throw new Error(`case ${c}: allocated ${maxAlloc} bytes for a ${input.byteLength}-byte ${isGz ? 'gzip ' : ''}input`);
    }
    const total = performance.now() - t0;
    console.log(`nifti fuzz: ${N} cases (${gzCases} gzip) in ${(total / 1000).toFixed(1)} s: ${ok} read, ${rejected} rejected ${JSON.stringify(Object.fromEntries(kinds))}, slowest ${maxMs.toFixed(1)} ms`);
    expect(ok + rejected).toBe(N);
    expect(ok).toBeGreaterThan(N / 20); // the mutations leave enough valid files to exercise the happy path
    expect(rejected).toBeGreaterThan(N / 4);
  });
});
