// DICOM series assembly on generated files (Node and Chromium): sorting along the normal, HU rescale,
// sign extension, byte orders, RLE, orientation, and the errors for mixed or incomplete series.
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { readDicomImage, readDicomSeries, UnsupportedTransferSyntaxError } from '../src/io/dicom.js';
import { decodeRleFrame } from '../src/io/dicom-rle.js';
import { volumeShape } from '../src/io/volume.js';
import { axialSeries, buildDicom, rleFrame, TS, type SliceSpec } from './helpers/dicom_builders.js';

const files = (specs: SliceSpec[], prefix = 's') => specs.map((s, i) => ({ name: `${prefix}${i}.dcm`, data: buildDicom(s) }));
const shuffle = <T>(xs: T[]) => xs.map((x, i) => [((i * 7) % xs.length) + i / 1000, x] as const).sort((a, b) => a[0] - b[0]).map((p) => p[1]);

describe('DICOM series', () => {
  it('sorts shuffled slices along the normal, rescales to HU, builds spacing and the RAS affine', async () => {
    const specs = axialSeries(5, { slope: 2, intercept: -1024, f: (k, j, i) => 100 * k + 10 * j + i });
    const v = await readDicomSeries(shuffle(files(specs)), { orientation: 'native' });
    expect(v.dims).toEqual([4, 3, 5]);
    expect(v.spacing).toEqual([0.7, 0.5, 2.5]);
    expect(v.orientation).toBe('LPS'); // axial DICOM: columns → patient left, rows → posterior, slices → superior
    expect(v.affine).toEqual([-0.7, -0, -0, 10, -0, -0.5, -0, 20, 0, 0, 2.5, 0, 0, 0, 0, 1]);
    for (let k = 0; k < 5; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 4; i++) {
      expect(v.data[(k * 3 + j) * 4 + i]).toBe(2 * (100 * k + 10 * j + i) - 1024);
    }
    expect(v.modality).toBe('CT');
  });

  it('RPI (default) flips columns and slices of an axial LPS series: depth runs superior → inferior', async () => {
    const v = await readDicomSeries(files(axialSeries(4)));
    expect(v.orientation).toBe('RPI');
    const [D, H, W] = volumeShape(v);
    expect([D, H, W]).toEqual([4, 3, 4]);
    // rpi[d, h, w] = native[k = 3 − d, j = h, i = 3 − w] = 100k + 10j + i − 1024
    expect(v.data[0]).toBe(100 * 3 + 3 - 1024);
    expect(v.data[(3 * 3 + 2) * 4 + 3]).toBe(10 * 2 - 1024);
  });

  it('descending positions and a head-first/feet-first mix of instance numbers give the same volume', async () => {
    const up = await readDicomSeries(files(axialSeries(4)));
    const down = await readDicomSeries(files(axialSeries(4).reverse().map((s, i) => ({ ...s, instanceNumber: i + 1 }))));
    expect(Array.from(down.data)).toEqual(Array.from(up.data));
  });

  it('explicit big endian, RLE and 12-bit signed samples decode to the same HU', async () => {
    const f = (k: number, j: number, i: number) => [-2048, -1, 0, 2047][(k + j + i) % 4]!;
    const base = await readDicomSeries(files(axialSeries(3, { bitsStored: 12, f })), { orientation: 'native' });
    expect(Array.from(base.data.subarray(0, 4))).toEqual([-2048, -1, 0, 2047]);
    for (const ts of [TS.explicitBE, TS.rle]) {
      const v = await readDicomSeries(files(axialSeries(3, { bitsStored: 12, f, transferSyntax: ts })), { orientation: 'native' });
      expect(Array.from(v.data), ts).toEqual(Array.from(base.data));
    }
    // Unsigned 8-bit, too.
    const u8 = await readDicomSeries(files(axialSeries(2, { bitsAllocated: 8, signed: false, f: (k, j, i) => 40 * k + 10 * j + i })), { orientation: 'native' });
    expect(u8.data[12 + 4 + 1]).toBe(40 + 10 + 1);
  });

  it('oblique series: spacing from the positions along the normal, affine keeps the tilt', async () => {
    const c = Math.cos(0.2), s = Math.sin(0.2);
    const ori = [1, 0, 0, 0, c, s];
    const normal = [0, -s, c];
    const specs = axialSeries(4, { orientation: ori }).map((sp, k) => ({ ...sp, position: [0, 3 * k * normal[1]!, 3 * k * normal[2]!] as [number, number, number] }));
    const v = await readDicomSeries(files(specs), { orientation: 'native' });
    expect(v.spacing[2]).toBeCloseTo(3, 10);
    expect(v.affine[5]).toBeCloseTo(-c * 0.5, 10);
    expect(v.affine[9]).toBeCloseTo(s * 0.5, 10);
  });

  it('a lone slice uses its SliceThickness-free default depth of 1 mm and identity orientation if absent', async () => {
    const im = buildDicom({ rows: 2, columns: 2, values: [1, 2, 3, 4] });
    const v = await readDicomSeries([{ name: 'one.dcm', data: im }], { orientation: 'native' });
    expect(v.dims).toEqual([2, 2, 1]);
    expect(v.spacing).toEqual([1, 1, 1]);
    expect(Array.from(v.data)).toEqual([1, 2, 3, 4]);
  });

  it('Blob inputs work the same as bytes', async () => {
    const specs = axialSeries(3);
    const a = await readDicomSeries(files(specs));
    const b = await readDicomSeries(specs.map((s, i) => ({ name: `b${i}.dcm`, data: new Blob([buildDicom(s) as Uint8Array<ArrayBuffer>]) })));
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });
});

describe('DICOM errors', () => {
  it('missing slice → incomplete series, naming the neighbours', async () => {
    const specs = axialSeries(6);
    specs.splice(3, 1);
    await expect(readDicomSeries(files(specs))).rejects.toThrow(/missing slice\(s\).*5\.000 mm between 's2\.dcm' and 's3\.dcm'/);
  });

  it('non-uniform gaps, duplicate positions, mixed sizes, mixed orientations', async () => {
    const uneven = axialSeries(5).map((s, k) => ({ ...s, position: [-10, -20, [0, 2.5, 5, 7.9, 10.4][k]!] as [number, number, number] }));
    await expect(readDicomSeries(files(uneven))).rejects.toThrow(/non-uniform slice spacing/);
    const dup = axialSeries(3);
    dup.push({ ...dup[1]!, instanceNumber: 9 });
    await expect(readDicomSeries(files(dup))).rejects.toThrow(/same slice position/);
    const sizes = axialSeries(3);
    sizes[1] = { ...sizes[1]!, rows: 2, values: Array.from(sizes[1]!.values).slice(0, 8) };
    await expect(readDicomSeries(files(sizes))).rejects.toThrow(/inconsistent image size/);
    const oris = axialSeries(3);
    oris[2] = { ...oris[2]!, orientation: [0, 1, 0, 0, 0, -1] };
    await expect(readDicomSeries(files(oris))).rejects.toThrow(/inconsistent ImageOrientationPatient/);
  });

  it('several series need a choice; the chosen one is read', async () => {
    const mixed = [...files(axialSeries(3, { seriesUID: '1.1' }), 'a'), ...files(axialSeries(2, { seriesUID: '2.2', modality: 'MR' }), 'b')];
    await expect(readDicomSeries(mixed)).rejects.toThrow(/mixed series: 2 series found.*1\.1 \(CT, 3 image\(s\)\); 2\.2 \(MR, 2 image\(s\)\)/);
    const v = await readDicomSeries(mixed, { seriesInstanceUID: '2.2' });
    expect(v.dims[2]).toBe(2);
    await expect(readDicomSeries(mixed, { seriesInstanceUID: '3.3' })).rejects.toThrow(/series 3\.3 not found/);
  });

  it('JPEG syntaxes are refused with a typed error naming the syntax and the file', async () => {
    for (const [ts, name] of [[TS.jpegBaseline, 'JPEG Baseline'], [TS.jpeg2000, 'JPEG 2000']] as const) {
      const e = await readDicomImage(buildDicom({ rows: 2, columns: 2, values: [0, 0, 0, 0], transferSyntax: ts }), 'x.dcm').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UnsupportedTransferSyntaxError);
      expect((e as UnsupportedTransferSyntaxError).transferSyntax).toBe(ts);
      expect((e as Error).message).toContain(name);
      expect((e as Error).message).toContain('x.dcm');
    }
  });

  it('truncated pixel data, garbage bytes, colour images; objects without pixels are skipped', async () => {
    await expect(readDicomImage(buildDicom({ rows: 4, columns: 4, values: new Array(16).fill(1), truncatePixels: 6 }), 't.dcm')).rejects.toThrow(/t\.dcm: truncated or corrupt DICOM file/);
    const junk = new Uint8Array(300).map((_, i) => (i * 37) & 255);
    await expect(readDicomImage(junk, 'junk.bin')).rejects.toBeInstanceOf(FormatError);
    await expect(readDicomImage(buildDicom({ rows: 1, columns: 2, values: [1, 2], samplesPerPixel: 3 }), 'rgb.dcm')).rejects.toThrow(/SamplesPerPixel = 3/);
    expect(await readDicomImage(buildDicom({ rows: 1, columns: 1, values: [], noPixelData: true }), 'dir.dcm')).toBeNull();
    await expect(readDicomSeries([{ name: 'dir.dcm', data: buildDicom({ rows: 1, columns: 1, values: [], noPixelData: true }) }])).rejects.toThrow(/none of the 1 DICOM file\(s\) holds an image/);
  });
});

describe('RLE decoder', () => {
  it('decodes literal and replicate runs, 8 and 16 bit, and rejects bad frames', () => {
    const values = [0, 0, 0, 0, 5, 6, 7, 65535, 65535, 1, 300, 300, 300];
    const f16 = rleFrame(values, 2);
    const le = decodeRleFrame(f16, values.length, 2, 'r');
    expect(Array.from(new Uint16Array(le.buffer, le.byteOffset, values.length))).toEqual(values);
    const f8 = rleFrame([9, 9, 9, 9, 1, 2], 1);
    expect(Array.from(decodeRleFrame(f8, 6, 1, 'r'))).toEqual([9, 9, 9, 9, 1, 2]);
    expect(() => decodeRleFrame(f16.subarray(0, 40), values.length, 2, 'r')).toThrow(FormatError);
    expect(() => decodeRleFrame(f16, values.length, 1, 'r')).toThrow(/2 segments; 1 expected/);
    expect(() => decodeRleFrame(f16.subarray(0, f16.length - 4), values.length, 2, 'r')).toThrow(/truncated|past the segment end/);
  });
});
