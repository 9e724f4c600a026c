// Model-grid geometry of the preprocessing pipelines: ramps along one voxel axis pushed through
// preprocessScan must come out as the coordinates modelGridMap predicts; modelToVolume puts a map
// back on the volume grid.
import { describe, expect, it } from 'vitest';
import { preprocessScan, type ScanPipeline } from '../src/data/dataset.js';
import { modelGridMap, modelToVolume } from '../src/data/preprocess-geometry.js';
import type { Shape3 } from '../src/data/resample.js';
import { axcodes, type Volume } from '../src/io/volume.js';

/** A volume whose value is the voxel index along `axis` (0 = i, 1 = j, 2 = k). */
function ramp(dims: [number, number, number], axis: number, affine: number[]): Volume {
  const data = new Float32Array(dims[0] * dims[1] * dims[2]);
  let o = 0;
  for (let k = 0; k < dims[2]; k++) for (let j = 0; j < dims[1]; j++) for (let i = 0; i < dims[0]; i++) data[o++] = [i, j, k][axis]!;
  const sp = [0, 1, 2].map((c) => Math.hypot(affine[c]!, affine[4 + c]!, affine[8 + c]!)) as [number, number, number];
  return { data, dims, spacing: sp, affine, orientation: axcodes(affine), source: 'ramp', frames: 1, frame: 0, affineSource: 'sform' };
}

/**
 * For every voxel-axis ramp: the model value at (d, h, w) is an affine function of the predicted
 * coordinate along the axis that ramps, inside the volume (`margin` voxels from its border, where two
 * chained resizes clamp) and within `tol` (nearest-exact axes).
 */
function check(dims: [number, number, number], affine: number[], pipeline: ScanPipeline, shape: Shape3, toCoord: (v: number, n: number) => number, tol: Record<number, number> = {}, margin = 0) {
  const vol0 = ramp(dims, 0, affine);
  const maps = modelGridMap(vol0, pipeline, shape);
  expect(new Set(maps.map((m) => m.axis)).size).toBe(3);
  let checked = 0;
  for (let vAxis = 0; vAxis < 3; vAxis++) {
    const g = preprocessScan(ramp(dims, vAxis, affine), pipeline, shape);
    const gridAxis = 2 - vAxis;
    const a = maps.findIndex((m) => m.axis === gridAxis);
    const m = maps[a]!;
    const n = dims[vAxis]!;
    for (let d = 0; d < shape[0]; d++) {
      for (let h = 0; h < shape[1]; h++) {
        for (let w = 0; w < shape[2]; w++) {
          const idx = [d, h, w][a]!;
          const u = m.scale * idx + m.offset;
          // Skip padding: any axis outside the volume.
          if (maps.some((q, b) => { const x = q.scale * [d, h, w][b]! + q.offset; return !(x >= margin && x <= dims[2 - q.axis]! - 1 - margin); })) continue;
          const got = toCoord(g.data[(d * shape[1] + h) * shape[2] + w]!, n);
          expect(Math.abs(got - u), `axis ${vAxis} model ${[d, h, w]}`).toBeLessThanOrEqual(tol[gridAxis] ?? 2e-3);
          checked++;
        }
      }
    }
  }
  expect(checked).toBeGreaterThan(100);
}

const RAS = [1.5, 0, 0, 3, 0, 0.8, 0, -2, 0, 0, 2.2, 5, 0, 0, 0, 1];
// LAS-like with axes permuted: i runs along y (anterior → posterior), j along x, k down.
const ODD = [0, -0.9, 0, 10, -1.1, 0, 0, 4, 0, 0, -2.6, 1, 0, 0, 0, 1];

describe('modelGridMap', () => {
  it('prepared: centre pad and crop', () => {
    check([9, 6, 5], RAS, { kind: 'prepared', mean: 0, std: 1 }, [4, 8, 7], (v) => v);
  });

  it('ct: resampling to spacing then crop, or resize', () => {
    const win = { window: [-1000, 1000] as [number, number], mean: 0, std: 1 };
    const toCoord = (v: number) => v * 2000 - 1000;
    check([13, 11, 7], RAS, { kind: 'ct', ...win, targetSpacing: [2, 1, 1] }, [9, 12, 16], toCoord);
    check([13, 11, 7], RAS, { kind: 'ct', ...win, targetSpacing: [2, 1, 1], mode: 'resize' }, [5, 8, 9], toCoord, {}, 1);
    check([10, 12, 6], ODD, { kind: 'ct', ...win, targetSpacing: null }, [5, 9, 7], toCoord);
  });

  it('mri: RPI reorientation, depth-first transpose, square pad, resize, nearest-exact depth, crop', () => {
    // No percentile clipping, identity normalisation: value = coordinate / (n − 1).
    const p: ScanPipeline = { kind: 'mri', percentiles: [0, 100], mean: 0, std: 1, resize: 12 };
    const toCoord = (v: number, n: number) => v * (n - 1);
    // Nearest-exact depth picks a voxel within half a source voxel (plus the half-step of the continuous map).
    check([9, 7, 5], RAS, p, [6, 10, 10], toCoord, { 0: 1.01 });
    // Largest spacing along j (coronal view) and a non-RPI storage order.
    const cor = [1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    const maps = modelGridMap(ramp([8, 5, 11], 0, cor), p, [4, 10, 10]);
    expect(maps[0].axis).toBe(1); // model depth runs along j
    check([8, 5, 11], cor, p, [4, 10, 10], toCoord, { 1: 1.01 });
    const odd = modelGridMap(ramp([10, 12, 6], 0, ODD), p, [6, 10, 10]);
    expect(odd.some((m) => m.scale < 0)).toBe(true); // a flipped axis
    check([10, 12, 6], ODD, p, [6, 10, 10], toCoord, { 0: 1.01 });
  });
});

describe('modelToVolume', () => {
  it('puts a constant map on the voxels inside the field of view and 0 outside; a model ramp lands on the volume ramp', () => {
    const vol = ramp([9, 6, 5], 1, RAS);
    const shape: Shape3 = [3, 4, 11];
    const maps = modelGridMap(vol, { kind: 'prepared' }, shape);
    const ones = modelToVolume(new Float32Array(3 * 4 * 11).fill(1), shape, vol, maps);
    expect(ones.length).toBe(9 * 6 * 5);
    // prepared crop: D 5 → 3 keeps k 1..3; H 6 → 4 keeps j 1..4; W 9 → 11 pads, all i kept.
    for (let k = 0; k < 5; k++) for (let j = 0; j < 6; j++) for (let i = 0; i < 9; i++) {
      expect(ones[(k * 6 + j) * 9 + i], `${i},${j},${k}`).toBe(k >= 1 && k <= 3 && j >= 1 && j <= 4 ? 1 : 0);
    }
    const g = preprocessScan(vol, { kind: 'prepared', mean: 0, std: 1 }, shape);
    const back = modelToVolume(g.data, shape, vol, maps);
    for (let k = 1; k <= 3; k++) for (let j = 1; j <= 4; j++) for (let i = 0; i < 9; i++) expect(back[(k * 6 + j) * 9 + i]).toBe(j);
  });
});
