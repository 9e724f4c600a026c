// CT and MRI preprocessing (spec §5) on hand-computed cases, in Node and Chromium; the last test pins
// a bit-level hash of both pipelines so the two runtimes are checked to give identical numbers.
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../src/errors.js';
import type { Volume } from '../src/io/volume.js';
import {
  centerPadCrop, clipByPercentile, mriModelInput, normalize, percentiles, prepareMriScan, preprocessCt, preprocessMri, resampleSize, resampleToSpacing, toDepthFirst, windowIntensity,
} from '../src/data/preprocess.js';
import { linearTable, nearestExactTable, resizeBilinearHW, resizeNearestExact, resizeTrilinear, transpose3, type Grid3, type Shape3 } from '../src/data/resample.js';

const f = Math.fround;
const grid = (shape: Shape3, fn: (d: number, h: number, w: number) => number): Grid3 => {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let o = 0;
  for (let d = 0; d < shape[0]; d++) for (let h = 0; h < shape[1]; h++) for (let w = 0; w < shape[2]; w++) data[o++] = fn(d, h, w);
  return { data, shape };
};
const at = (g: Grid3, d: number, h: number, w: number) => g.data[(d * g.shape[1] + h) * g.shape[2] + w]!;
const vol = (g: Grid3, spacing: [number, number, number], orientation = 'RPI'): Volume => {
  // [D, H, W] grid → volume with i = W, j = H, k = D and an RPI affine.
  const s = orientation === 'RPI' ? [1, -1, -1] : [1, 1, 1];
  const affine = [s[0]! * spacing[2], 0, 0, 0, 0, s[1]! * spacing[1], 0, 0, 0, 0, s[2]! * spacing[0], 0, 0, 0, 0, 1];
  return { data: g.data, dims: [g.shape[2], g.shape[1], g.shape[0]], spacing: [spacing[2], spacing[1], spacing[0]], affine, orientation, source: 'mem', frames: 1, frame: 0, affineSource: 'derived' };
};

describe('interpolation (PyTorch align_corners=False / nearest-exact semantics)', () => {
  it('linear index tables: downsample 4 → 2 and upsample 2 → 4', () => {
    const down = linearTable(4, 2);
    expect(Array.from(down.i0)).toEqual([0, 2]);
    expect(Array.from(down.w1)).toEqual([0.5, 0.5]);
    const up = linearTable(2, 4);
    // src = 0.5·(o + 0.5) − 0.5 = −0.25 (→ 0), 0.25, 0.75, 1.25 (→ index 1, clamped neighbour)
    expect(Array.from(up.i0)).toEqual([0, 0, 0, 1]);
    expect(Array.from(up.i1)).toEqual([1, 1, 1, 1]);
    expect(Array.from(up.w1)).toEqual([0, 0.25, 0.75, 0.25]);
  });

  it('trilinear resize of a linear function is the function at the clamped source coordinates', () => {
    const g = grid([2, 3, 4], (d, h, w) => 100 * d + 10 * h + w);
    const out = resizeTrilinear(g, [4, 2, 3]);
    const src = (inn: number, o: number, oi: number) => Math.min(Math.max((inn / o) * (oi + 0.5) - 0.5, 0), inn - 1);
    for (let d = 0; d < 4; d++) for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) {
      expect(at(out, d, h, w)).toBeCloseTo(100 * src(2, 4, d) + 10 * src(3, 2, h) + src(4, 3, w), 4);
    }
    expect(Array.from(resizeTrilinear({ data: Float32Array.from([0, 1]), shape: [1, 1, 2] }, [1, 1, 4]).data)).toEqual([0, 0.25, 0.75, 1]);
  });

  it('nearest-exact: floor((o + 0.5)·in/out), clamped', () => {
    expect(Array.from(nearestExactTable(4, 6))).toEqual([0, 1, 1, 2, 3, 3]);
    expect(Array.from(nearestExactTable(6, 4))).toEqual([0, 2, 3, 5]);
    expect(Array.from(nearestExactTable(48, 144)).slice(0, 6)).toEqual([0, 0, 0, 1, 1, 1]);
    const g = grid([4, 1, 1], (d) => d * 10);
    expect(Array.from(resizeNearestExact(g, [6, 1, 1]).data)).toEqual([0, 10, 10, 20, 30, 30]);
  });

  it('bilinear in-plane resize treats depth as channels', () => {
    const g = grid([2, 1, 2], (d, _h, w) => d * 10 + w);
    const out = resizeBilinearHW(g, 1, 4);
    expect(Array.from(out.data)).toEqual([0, 0.25, 0.75, 1, 10, 10.25, 10.75, 11]);
  });

  it('transpose3 follows np.transpose', () => {
    const g = grid([2, 3, 4], (d, h, w) => 100 * d + 10 * h + w);
    const t = transpose3(g, [2, 0, 1]);
    expect(t.shape).toEqual([4, 2, 3]);
    expect(at(t, 3, 1, 2)).toBe(123);
    expect(() => transpose3(g, [0, 0, 1])).toThrow(ShapeError);
  });
});

describe('CT pipeline', () => {
  it('window: clip((HU + 1150) / 1500, 0, 1)', () => {
    const g = windowIntensity({ data: Float32Array.from([-2000, -1150, -400, 350, 1000]), shape: [1, 1, 5] });
    expect(Array.from(g.data)).toEqual([0, 0, 0.5, 1, 1]);
    const custom = windowIntensity({ data: Float32Array.from([-160, 40, 240]), shape: [1, 1, 3] }, -160, 240);
    expect(Array.from(custom.data)).toEqual([0, 0.5, 1]);
  });

  it('normalise: (x − 0.449) / 0.226 in float32', () => {
    const g = normalize({ data: Float32Array.from([0, 1, 0.449]), shape: [1, 1, 3] });
    expect(Array.from(g.data)).toEqual([f(f(0 - f(0.449)) / f(0.226)), f(f(1 - f(0.449)) / f(0.226)), 0]);
  });

  it('resample sizes truncate n·spacing/target (process.py int())', () => {
    expect(resampleSize([100, 512, 512], [1.5, 0.7, 0.7])).toEqual([50, 358, 358]);
    expect(resampleSize([303, 512, 512], [1, 0.75, 0.75])).toEqual([101, 384, 384]);
    expect(() => resampleSize([1, 4, 4], [1, 1, 1])).toThrow(ShapeError);
    const g = resampleToSpacing(grid([6, 2, 2], (d) => d), [1.5, 1, 1]);
    expect(g.shape).toEqual([3, 2, 2]);
    expect(at(g, 0, 0, 0)).toBeCloseTo(0.5, 6); // src = 2·0.5 − 0.5
    expect(at(g, 2, 1, 1)).toBeCloseTo(4.5, 6);
  });

  it('centre pad/crop: pad_lo = pad // 2, crop start = (n − size) // 2', () => {
    const g = grid([2, 5, 3], (d, h, w) => 100 * (d + 1) + 10 * h + w);
    const out = centerPadCrop(g, [5, 2, 3]);
    expect(out.shape).toEqual([5, 2, 3]);
    // depth 2 → 5: pad 3 = 1 before, 2 after; height 5 → 2: start 1.
    expect(at(out, 0, 0, 0)).toBe(0);
    expect(at(out, 1, 0, 0)).toBe(110);
    expect(at(out, 2, 1, 2)).toBe(222);
    expect(at(out, 3, 0, 0)).toBe(0);
    // odd crop 4 → 1 takes index (4 − 1) // 2 = 1; odd pad 1 → 4 puts the voxel at 1.
    expect(Array.from(centerPadCrop(grid([1, 1, 4], (_d, _h, w) => w + 1), [1, 1, 1]).data)).toEqual([2]);
    expect(Array.from(centerPadCrop(grid([1, 1, 1], () => 7), [1, 1, 4]).data)).toEqual([0, 7, 0, 0]);
  });

  it('preprocessCt: constant −400 HU at (3, 1, 1) mm, cropped to a small grid', () => {
    const v = vol(grid([4, 6, 6], () => -400), [3, 1, 1], 'RAS');
    const out = preprocessCt(v, { size: [6, 4, 8] });
    expect(out.shape).toEqual([6, 4, 8]);
    const inside = f(f(0.5 - f(0.449)) / f(0.226));
    const pad = f(f(0 - f(0.449)) / f(0.226));
    expect(at(out, 1, 0, 1)).toBe(inside); // depth 4 → 6 pads 1 before
    expect(at(out, 0, 0, 1)).toBe(pad);
    expect(at(out, 5, 3, 1)).toBe(pad);
    expect(at(out, 2, 2, 0)).toBe(pad); // width 6 → 8 pads 1 before
    // 'resize' mode interpolates instead.
    const r = preprocessCt(v, { size: [2, 3, 3], mode: 'resize' });
    expect(Array.from(r.data).every((x) => x === inside)).toBe(true);
  });

  it('preprocessCt resamples with the volume spacing (1.5 mm slices → 3 mm halves the depth)', () => {
    const v = vol(grid([8, 4, 4], (d) => -1150 + 150 * d), [1.5, 1, 1], 'RAS');
    const out = preprocessCt(v, { size: [4, 4, 4], mean: 0, std: 1 });
    // resampled depth d' samples HU at src 2d' + 0.5 → −1150 + 150·(2d' + 0.5), then /1500.
    for (let d = 0; d < 4; d++) expect(at(out, d, 0, 0)).toBeCloseTo((150 * (2 * d + 0.5)) / 1500, 6);
  });
});

describe('MRI pipeline', () => {
  it('percentiles match numpy (linear method)', () => {
    const [lo, hi] = percentiles(Float32Array.from({ length: 10 }, (_, i) => i), [0.5, 99.5]);
    expect(lo).toBeCloseTo(0.045, 12);
    expect(hi).toBeCloseTo(8.955, 12);
    const a = Float32Array.from([5, -3, 7, 7, 100, 2, 0, 1, 9, -50, 4, 4]);
    const p = percentiles(a, [0.5, 99.5, 10, 50, 90]);
    [-47.415, 94.99500000000003, -2.7, 4, 8.8].forEach((x, i) => expect(p[i]).toBeCloseTo(x, 10));
    expect(() => percentiles(Float32Array.from([1, NaN]), [50])).toThrow(ShapeError);
  });

  it('radix-select percentiles equal a full sort on random data with duplicates, negatives, ±0 and ±Inf', () => {
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + Math.floor(rand() * 3000);
      const a = Float32Array.from({ length: n }, () => {
        const r = rand();
        return r < 0.3 ? 0 : r < 0.35 ? -0 : r < 0.37 ? (rand() < 0.5 ? Infinity : -Infinity) : r < 0.6 ? Math.round(rand() * 10) - 5 : (rand() - 0.5) * 1e6;
      });
      const sorted = Float32Array.from(a).sort();
      const qs = [0, 0.5, 12.5, 50, 99.5, 100, rand() * 100];
      const got = percentiles(a, qs);
      qs.forEach((q, i) => {
        const vi = (n - 1) * (q / 100), lo = Math.floor(vi), hi = Math.min(lo + 1, n - 1), t = vi - lo;
        const x = sorted[lo]!, y = sorted[hi]!;
        const want = t >= 0.5 ? y - (y - x) * (1 - t) : x + (y - x) * t; // numpy's _lerp, NaN for ∞ − ∞ as numpy gives
        if (Number.isNaN(want)) expect(Number.isNaN(got[i]!)).toBe(true);
        else expect(got[i]).toBe(want === 0 ? got[i] : want); // ±0 compare equal either way
      });
    }
  });

  it('clip_by_percentile then min–max (values from numpy)', () => {
    const a = Float32Array.from([5, -3, 7, 7, 100, 2, 0, 1, 9, -50, 4, 4]);
    const want = [0.36805701844195926, 0.31188118809691157, 0.3821009760282212, 0.3821009760282212, 0.9999999999297802, 0.34699108206256635, 0.3329471244763045, 0.3399691032694354, 0.3961449336144831, 0.0, 0.36103503964882827, 0.36103503964882827];
    const out = clipByPercentile({ data: a, shape: [1, 1, 12] });
    expect(Array.from(out.data)).toEqual(want.map(f));
  });

  it('depth = axis with the largest spacing (axial keep, coronal (y, z, x), sagittal (x, z, y))', () => {
    const g = grid([2, 3, 4], (d, h, w) => 100 * d + 10 * h + w);
    expect(toDepthFirst(g, [5, 1, 1]).view).toBe('axial');
    expect(toDepthFirst(g, [1, 1, 1]).view).toBe('axial'); // ties keep z, as np.argmax
    const cor = toDepthFirst(g, [1, 4, 1]);
    expect(cor.view).toBe('coronal');
    expect(cor.grid.shape).toEqual([3, 2, 4]);
    expect(at(cor.grid, 2, 1, 3)).toBe(123);
    const sag = toDepthFirst(g, [1, 1, 6]);
    expect(sag.view).toBe('sagittal');
    expect(sag.grid.shape).toEqual([4, 2, 3]);
    expect(at(sag.grid, 3, 1, 2)).toBe(123);
    expect(toDepthFirst(g, [1, 1, 6], 'keep').grid).toBe(g);
  });

  it('prepareMriScan reorients to RPI before choosing the depth axis', () => {
    // Stored RAS (k runs toward Superior): RPI flips H and D.
    const g = grid([3, 2, 2], (d, h) => 10 * d + h);
    const scan = prepareMriScan(vol(g, [2, 1, 1], 'RAS'), { percentiles: [0, 100] });
    expect(scan.view).toBe('axial');
    // min 0, max 21: rpi[0, 0, 0] = native[d = 2, h = 1] = 21 → 1.
    expect(at(scan.grid, 0, 0, 0)).toBeCloseTo(1, 6);
    expect(at(scan.grid, 2, 1, 0)).toBe(0);
  });

  it('model input: square pad, bilinear resize, nearest-exact depth, centre crop, normalise', () => {
    // Scan [2, 3, 5]: ramp w along W on slice 0, +10 on slice 1; pad H 3 → 5 (1 row of zeros each side).
    const scan = grid([2, 3, 5], (d, _h, w) => w + 10 * d);
    const out = mriModelInput(scan, { numSlices: 3, resize: 10, crop: 6, mean: 0, std: 1 });
    expect(out.shape).toEqual([3, 6, 6]);
    // Depth 2 → 3: source slices [0, 1, 1]. Width 5 → 10 of a ramp: min(max(0.5·o − 0.25, 0), 4) at o = 2..7.
    // Height 5 → 10 at output rows 2..7: src 0.75, 1.25, 1.75, 2.25, 2.75, 3.25 → rows of ramp (1..3) with
    // zero rows 0 and 4 mixed in: weight of data = 0.75, 1, 1, 1, 1, 0.75.
    const hw = [0.75, 1, 1, 1, 1, 0.75];
    const ramp = (o: number) => Math.min(Math.max(0.5 * o - 0.25, 0), 4);
    for (let d = 0; d < 3; d++) for (let h = 0; h < 6; h++) for (let w = 0; w < 6; w++) {
      const slice = [0, 1, 1][d]!;
      const base = ramp(w + 2) + 10 * slice;
      expect(at(out, d, h, w)).toBeCloseTo(hw[h]! * base, 5);
    }
    expect(() => mriModelInput(scan, { resize: 8, crop: 9 })).toThrow(ShapeError);
  });

  it('preprocessMri defaults give [144, 224, 224]', () => {
    const v = vol(grid([5, 7, 6], (d, h, w) => d + h * w), [4, 1, 1]);
    const out = preprocessMri(v);
    expect(out.shape).toEqual([144, 224, 224]);
    expect(out.data.every(Number.isFinite)).toBe(true);
  });
});

describe('determinism across runtimes', () => {
  it('CT and MRI pipelines give bit-identical output (pinned hash, same in Node and Chromium)', () => {
    let s = 12345;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const ct = vol(grid([9, 21, 17], () => -1200 + 2600 * rand()), [2.5, 0.7, 0.8], 'RAS');
    const mr = vol(grid([7, 13, 11], () => 1000 * rand()), [1.2, 1, 3], 'RAS');
    const hash = (g: Grid3) => {
      let h = 0x811c9dc5;
      const u = new Uint32Array(g.data.buffer, g.data.byteOffset, g.data.length);
      for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193) >>> 0;
      return h.toString(16);
    };
    const a = preprocessCt(ct, { size: [10, 20, 20] });
    const b = preprocessMri(mr, { numSlices: 16, resize: 32, crop: 24 });
    expect([hash(a), hash(b)]).toEqual(['4e61f52b', '17e0af48']);
  });
});
