// NIfTI reading and writing on generated files (Node and Chromium): every datatype in both byte orders
// and both versions, scaling, qform/sform precedence, 4-D, reorientation, and bad input.
import { describe, expect, it } from 'vitest';
import { FormatError, HlipError } from '../src/errors.js';
import { niftiAffine, parseNiftiHeader, qformAffine, readNifti, writeNifti } from '../src/io/nifti.js';
import { axcodes, reorient, volumeShape, type Volume } from '../src/io/volume.js';
import { buildNifti, DTYPE_CODE, gzip, sampleValues, type NiftiDType } from './helpers/nifti_builders.js';

const DTYPES = Object.keys(DTYPE_CODE) as NiftiDType[];
const f32 = (xs: ArrayLike<number>) => Array.from(xs, (x) => Math.fround(x));
const ramp = (n: number) => Array.from({ length: n }, (_, i) => i);

async function rejects(p: Promise<unknown>, re: RegExp, name = 'case.nii'): Promise<HlipError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e, `expected a typed error matching ${re}`).toBeInstanceOf(HlipError);
  expect((e as Error).message).toMatch(re);
  expect((e as Error).message).toContain(name);
  return e as HlipError;
}

describe('NIfTI datatypes and byte order', () => {
  for (const version of [1, 2] as const) {
    for (const le of [true, false]) {
      it(`NIfTI-${version} ${le ? 'little' : 'big'}-endian: every datatype reads back exactly (as float32)`, async () => {
        for (const dtype of DTYPES) {
          const values = sampleValues(dtype, 24);
          const bytes = buildNifti({ version, littleEndian: le, dtype, dims: [4, 3, 2], values });
          const v = await readNifti(bytes, { name: `${dtype}.nii`, orientation: 'native' });
          expect(v.dims, dtype).toEqual([4, 3, 2]);
          expect(Array.from(v.data), dtype).toEqual(f32(values));
          const gz = await readNifti(await gzip(bytes), { name: `${dtype}.nii.gz`, orientation: 'native' });
          expect(Array.from(gz.data), `${dtype} gz`).toEqual(f32(values));
        }
      });
    }
  }

  it('NIfTI-2 big-endian 64-bit dims and vox_offset are read correctly (nifti-reader-js swaps their halves)', async () => {
    const bytes = buildNifti({ version: 2, littleEndian: false, dtype: 'int16', dims: [70000, 1, 1], values: ramp(70000).map((i) => i % 30000), extension: new Uint8Array(20) });
    const h = parseNiftiHeader(bytes, 'big2.nii');
    expect(h.dim.slice(0, 4)).toEqual([3, 70000, 1, 1]);
    expect(h.voxOffset).toBe(560);
    const v = await readNifti(bytes, { orientation: 'native' });
    expect(v.data[69999]).toBe(69999 % 30000);
  });

  it('reads from a Blob / File, naming the file in errors', async () => {
    const bytes = buildNifti({ dtype: 'uint8', dims: [2, 2, 2], values: ramp(8) });
    const v = await readNifti(new Blob([bytes as Uint8Array<ArrayBuffer>]), { orientation: 'native' });
    expect(Array.from(v.data)).toEqual(ramp(8));
    if (typeof File !== 'undefined') {
      const bad = new File([bytes.subarray(0, 300) as Uint8Array<ArrayBuffer>], 'short.nii');
      await rejects(readNifti(bad), /too short/, 'short.nii');
    }
  });
});

describe('NIfTI scaling', () => {
  it('scl_slope / scl_inter apply to integer data; slope 0 or NaN means no scaling', async () => {
    const values = [0, 1, 2, -3, 100, -32768, 32767, 7];
    const s = await readNifti(buildNifti({ dtype: 'int16', dims: [8, 1, 1], values, sclSlope: 0.5, sclInter: -1024 }), { orientation: 'native' });
    expect(Array.from(s.data)).toEqual(f32(values.map((x) => x * 0.5 - 1024)));
    const z = await readNifti(buildNifti({ dtype: 'int16', dims: [8, 1, 1], values, sclSlope: 0, sclInter: 5 }), { orientation: 'native' });
    expect(Array.from(z.data)).toEqual(values);
    const n = await readNifti(buildNifti({ dtype: 'int16', dims: [8, 1, 1], values, sclSlope: NaN, sclInter: 5 }), { orientation: 'native' });
    expect(Array.from(n.data)).toEqual(values);
  });

  it('scaling also applies to float data (big-endian float64 with slope 2, inter 1)', async () => {
    const values = [0.25, -1.5, 1e3, 3];
    const v = await readNifti(buildNifti({ dtype: 'float64', littleEndian: false, dims: [4, 1, 1], values, sclSlope: 2, sclInter: 1 }), { orientation: 'native' });
    expect(Array.from(v.data)).toEqual(f32(values.map((x) => 2 * x + 1)));
  });
});

describe('NIfTI affine precedence and orientation', () => {
  const base = { dtype: 'float32' as const, dims: [3, 4, 5], values: ramp(60), pixdim: [1, 2, 3, 4, 1, 1, 1, 1] };

  it('sform (code > 0) wins over qform; qform is used when sform_code = 0; pixdim when both are 0', async () => {
    const srow = [-2, 0, 0, 10, 0, 3, 0, 20, 0, 0, 4, 30];
    const both = await readNifti(buildNifti({ ...base, sformCode: 2, srow, qformCode: 1 }), { orientation: 'native' });
    expect(both.affineSource).toBe('sform');
    expect(both.affine).toEqual([...srow, 0, 0, 0, 1]);
    expect(both.orientation).toBe('LAS');
    // qform: 180° about z (quaternion (b, c, d) = (0, 0, 1)) → x and y flip.
    const q = await readNifti(buildNifti({ ...base, qformCode: 1, quatern: [0, 0, 1], qoffset: [5, 6, 7] }), { orientation: 'native' });
    expect(q.affineSource).toBe('qform');
    expect(q.orientation).toBe('LPS');
    q.affine.forEach((v, i) => expect(v).toBeCloseTo([-2, 0, 0, 5, 0, -3, 0, 6, 0, 0, 4, 7, 0, 0, 0, 1][i]!, 6));
    const p = await readNifti(buildNifti(base), { orientation: 'native' });
    expect(p.affineSource).toBe('pixdim');
    expect(p.affine).toEqual([2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4, 0, 0, 0, 0, 1]);
    expect(p.spacing).toEqual([2, 3, 4]);
  });

  it('qfac = pixdim[0] = −1 flips k; a singular sform falls back to the qform', async () => {
    const q = await readNifti(buildNifti({ ...base, pixdim: [-1, 2, 3, 4, 1, 1, 1, 1], qformCode: 1 }), { orientation: 'native' });
    expect(q.orientation).toBe('RAI');
    const s = await readNifti(buildNifti({ ...base, sformCode: 1, srow: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], qformCode: 1 }), { orientation: 'native' });
    expect(s.affineSource).toBe('qform');
  });

  it('qformAffine: 90° about z maps i to +y', () => {
    const h = Math.SQRT1_2;
    const a = qformAffine([0, 0, h], [0, 0, 0], [1, 2, 3, 4]);
    expect(axcodes(a)).toBe('ALS');
    expect(a[4]).toBeCloseTo(2, 6);
    expect(a[1]).toBeCloseTo(-3, 6);
  });

  it('xyzt_units in metres scale the affine to millimetres (as ITK does)', async () => {
    const v = await readNifti(buildNifti({ ...base, pixdim: [1, 0.001, 0.002, 0.003, 1, 1, 1, 1], xyztUnits: 1 }), { orientation: 'native' });
    v.spacing.forEach((s, i) => expect(s).toBeCloseTo([1, 2, 3][i]!, 4));
  });

  it('reorients a LAS volume to RPI (flip i, j, k) and back exactly', async () => {
    const srow = [-2, 0, 0, 10, 0, 3, 0, 20, 0, 0, 4, 30];
    const native = await readNifti(buildNifti({ ...base, sformCode: 1, srow }), { orientation: 'native' });
    const rpi = reorient(native, 'RPI');
    expect(rpi.orientation).toBe('RPI');
    expect(axcodes(rpi.affine)).toBe('RPI');
    const [D, H, W] = volumeShape(rpi);
    expect([D, H, W]).toEqual([5, 4, 3]);
    // rpi[d, h, w] = native[k = 4 − d, j = 3 − h, i = 2 − w]
    for (let d = 0; d < D; d++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
      expect(rpi.data[(d * H + h) * W + w]).toBe(native.data[((4 - d) * 4 + (3 - h)) * 3 + (2 - w)]);
    }
    // Same world position for the same voxel.
    const world = (v: Volume, i: number, j: number, k: number) => [0, 1, 2].map((r) => v.affine[r * 4]! * i + v.affine[r * 4 + 1]! * j + v.affine[r * 4 + 2]! * k + v.affine[r * 4 + 3]!);
    expect(world(rpi, 0, 0, 0)).toEqual(world(native, 2, 3, 4));
    const back = reorient(rpi, native.orientation);
    expect(back.affine).toEqual(native.affine);
    expect(Array.from(back.data)).toEqual(Array.from(native.data));
    // The default read gives the same RPI volume.
    const dflt = await readNifti(buildNifti({ ...base, sformCode: 1, srow }));
    expect(Array.from(dflt.data)).toEqual(Array.from(rpi.data));
  });

  it('permuted axes (sagittal storage: i→A, j→S, k→L) become RPI [D, H, W]', async () => {
    const srow = [0, 0, -1, 0, 1, 0, 0, 0, 0, 1, 0, 0];
    const native = await readNifti(buildNifti({ dtype: 'int16', dims: [2, 3, 4], values: ramp(24), sformCode: 1, srow }), { orientation: 'native' });
    expect(native.orientation).toBe('ASL');
    const rpi = reorient(native, 'RPI');
    expect(rpi.dims).toEqual([4, 2, 3]); // i' ← k (flipped), j' ← i (flipped), k' ← j (flipped)
    // rpi voxel (i', j', k') = native (i = 1 − j', j = 2 − k', k = 3 − i')
    const nat = (i: number, j: number, k: number) => native.data[(k * 3 + j) * 2 + i];
    for (let k2 = 0; k2 < 3; k2++) for (let j2 = 0; j2 < 2; j2++) for (let i2 = 0; i2 < 4; i2++) {
      expect(rpi.data[(k2 * 2 + j2) * 4 + i2]).toBe(nat(1 - j2, 2 - k2, 3 - i2));
    }
  });
});

describe('NIfTI 4-D', () => {
  it('returns the first volume by default and any frame on request; counts frames', async () => {
    const bytes = buildNifti({ dtype: 'int16', dims: [2, 2, 1, 3], values: ramp(12) });
    const v0 = await readNifti(bytes, { orientation: 'native' });
    expect(v0.frames).toBe(3);
    expect(Array.from(v0.data)).toEqual([0, 1, 2, 3]);
    const v2 = await readNifti(bytes, { orientation: 'native', frame: 2 });
    expect(Array.from(v2.data)).toEqual([8, 9, 10, 11]);
    await rejects(readNifti(bytes, { frame: 3, name: 'four.nii' }), /frame 3 requested but the file holds 3/, 'four.nii');
  });
});

describe('NIfTI bad input gets typed errors naming the file', () => {
  const good = () => buildNifti({ dtype: 'int16', dims: [8, 8, 8], values: ramp(512) });

  it('truncated files and truncated gzip', async () => {
    const b = good();
    await rejects(readNifti(b.subarray(0, b.length - 10), { name: 'case.nii' }), /need 1024 data bytes/);
    const gz = await gzip(b);
    await rejects(readNifti(gz.subarray(0, gz.length >> 1), { name: 'case.nii' }), /truncated/);
    await rejects(readNifti(gz.subarray(0, 12), { name: 'case.nii' }), /gzip|short/);
  });

  it('wrong magic, wrong sizeof_hdr, header/image pair, short header', async () => {
    const b = good();
    b[345] = 0x3f;
    await rejects(readNifti(b, { name: 'case.nii' }), /bad NIfTI-1 magic/);
    const c = good();
    new DataView(c.buffer).setInt32(0, 999, true);
    await rejects(readNifti(c, { name: 'case.nii' }), /sizeof_hdr is 999/);
    await rejects(readNifti(buildNifti({ dims: [1, 1, 1], values: [1], magic: 'ni1\0' }), { name: 'case.nii' }), /\.hdr\/\.img pair/);
    await rejects(readNifti(new Uint8Array(100), { name: 'case.nii' }), /too short/);
    await rejects(readNifti(new TextEncoder().encode('x'.repeat(600)), { name: 'case.nii' }), /not a NIfTI file/);
  });

  it('dims that do not match the data size (raw and gzip), absurd dims, bad datatype and bitpix', async () => {
    const big = buildNifti({ dtype: 'int16', dims: [8, 8, 8], values: ramp(512) });
    new DataView(big.buffer).setInt16(44, 9, true); // dim[2] = 9
    await rejects(readNifti(big, { name: 'case.nii' }), /dims 8×9×8 need 1152 data bytes/);
    await rejects(readNifti(await gzip(big), { name: 'case.nii' }), /dims 8×9×8 need/);
    const huge = buildNifti({ dtype: 'int16', dims: [8, 8, 8], values: ramp(512) });
    [32767, 32767, 32767].forEach((d, i) => new DataView(huge.buffer).setInt16(42 + 2 * i, d, true));
    await rejects(readNifti(await gzip(huge), { name: 'case.nii' }), /limit|cannot hold/);
    const lying = buildNifti({ dtype: 'int16', dims: [8, 8, 8], values: ramp(512) });
    [1000, 1000, 100].forEach((d, i) => new DataView(lying.buffer).setInt16(42 + 2 * i, d, true));
    await rejects(readNifti(await gzip(lying), { name: 'case.nii' }), /cannot hold that much/);
    const zero = good();
    new DataView(zero.buffer).setInt16(42, 0, true);
    await rejects(readNifti(zero, { name: 'case.nii' }), /dim\[1\] = 0/);
    await rejects(readNifti(buildNifti({ dims: [2, 1, 1], values: [1, 2], datatypeCode: 32 }), { name: 'case.nii' }), /complex64 is not supported/);
    await rejects(readNifti(buildNifti({ dims: [2, 1, 1], values: [1, 2], datatypeCode: 77 }), { name: 'case.nii' }), /unknown NIfTI datatype code 77/);
    await rejects(readNifti(buildNifti({ dims: [2, 1, 1], values: [1, 2], bitpix: 16 }), { name: 'case.nii' }), /bitpix 16 does not match datatype float32/);
    await rejects(readNifti(buildNifti({ dims: [2, 1, 1], values: [1, 2], voxOffset: 352.5 }), { name: 'case.nii' }), /vox_offset = 352.5/);
  });

  it('NaN / Inf voxels: an error by default, zeros on request', async () => {
    const b = buildNifti({ dims: [4, 1, 1], values: [1, NaN, Infinity, 2] });
    await rejects(readNifti(b, { name: 'case.nii' }), /2 voxel\(s\) are NaN or infinite/);
    const v = await readNifti(b, { nonFinite: 'zero', orientation: 'native' });
    expect(Array.from(v.data)).toEqual([1, 0, 0, 2]);
  });

  it('a non-finite slope does not produce NaNs; vox_offset 0 means data right after the header', async () => {
    const b = buildNifti({ dtype: 'uint8', dims: [2, 1, 1], values: [3, 4], voxOffset: 352 });
    new DataView(b.buffer).setFloat32(108, 0, true);
    const v = await readNifti(b, { orientation: 'native' });
    expect(Array.from(v.data)).toEqual([3, 4]);
  });
});

describe('NIfTI writer', () => {
  it('round-trips data, affine (sform) and qform for an oblique LPS-ish volume, raw and gzip', async () => {
    const c = Math.cos(0.3), s = Math.sin(0.3);
    // Rotation about z by 0.3 rad, scaled columns (0.8, 0.9, 2.5), then x and y flipped (LPS-like).
    const affine = [-c * 0.8, s * 0.9, 0, 100, -s * 0.8, -c * 0.9, 0, 120, 0, 0, 2.5, -50, 0, 0, 0, 1];
    const data = Float32Array.from(ramp(60), (x) => x * 1.5 - 7);
    const vol: Volume = { data, dims: [5, 4, 3], spacing: [0.8, 0.9, 2.5], affine, orientation: axcodes(affine), source: 'mem', frames: 1, frame: 0, affineSource: 'derived' };
    for (const gz of [false, true]) {
      const bytes = await writeNifti(vol, { gzip: gz });
      expect(bytes[0] === 0x1f).toBe(gz);
      const back = await readNifti(bytes, { orientation: 'native' });
      expect(Array.from(back.data)).toEqual(Array.from(data));
      back.affine.forEach((v, i) => expect(v).toBeCloseTo(affine[i]!, 4));
      if (!gz) {
        // The qform alone (sform disabled) reproduces the same affine.
        const h = parseNiftiHeader(bytes, 'w.nii');
        h.sformCode = 0;
        const q = niftiAffine(h);
        expect(q.from).toBe('qform');
        q.affine.forEach((v, i) => expect(v).toBeCloseTo(affine[i]!, 4));
      }
    }
  });

  it('writes int16 / uint8 with rounding and clamping', async () => {
    const affine = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    const vol: Volume = { data: Float32Array.from([-40000, -1.6, 0.4, 2.5, 40000, NaN]), dims: [6, 1, 1], spacing: [1, 1, 1], affine, orientation: 'RAS', source: 'mem', frames: 1, frame: 0, affineSource: 'derived' };
    const i16 = await readNifti(await writeNifti(vol, { datatype: 'int16' }), { orientation: 'native' });
    expect(Array.from(i16.data)).toEqual([-32768, -2, 0, 3, 32767, 0]);
    const u8 = await readNifti(await writeNifti(vol, { datatype: 'uint8' }), { orientation: 'native' });
    expect(Array.from(u8.data)).toEqual([0, 0, 0, 3, 255, 0]);
  });

  it('refuses a volume whose affine cannot be inverted', async () => {
    const vol: Volume = { data: new Float32Array(1), dims: [1, 1, 1], spacing: [1, 1, 1], affine: new Array(16).fill(0), orientation: 'RAS', source: 'bad-affine', frames: 1, frame: 0, affineSource: 'derived' };
    await expect(writeNifti(vol)).rejects.toBeInstanceOf(FormatError);
  });
});

describe('orientation codes', () => {
  it('axcodes picks the dominant axis per column (oblique 30°) and reorient refuses bad codes', () => {
    const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
    expect(axcodes([c, -s, 0, 0, s, c, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])).toBe('RAS');
    expect(axcodes([0, 0, -2, 0, -1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 1])).toBe('PSL');
    const v: Volume = { data: new Float32Array(1), dims: [1, 1, 1], spacing: [1, 1, 1], affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], orientation: 'RAS', source: 'codes', frames: 1, frame: 0, affineSource: 'derived' };
    expect(() => reorient(v, 'RRS')).toThrow(FormatError);
    expect(() => reorient(v, 'XYZ')).toThrow(/not an orientation code/);
    expect(reorient(v, 'lps').orientation).toBe('LPS');
  });
});
