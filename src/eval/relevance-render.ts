// The reference's relevance figure (hlip-spec §7.2 step 4) as pixels, browser-safe: rows = depth
// tokens (the centre slice int((k + 0.5)·pd) of each), columns = scans; each tile is the de-normalised
// image slice in gray (min–max over the slice, as imshow autoscales) with the relevance slice min–max
// normalised per slice, values below 0.25 masked, jet colours blended at alpha 0.3.
import { ShapeError } from '../errors.js';
import { HLIP_MEAN, HLIP_STD } from '../data/preprocess.js';

export interface MosaicOptions {
  /** Depth of a patch (model patch size along D): one row per depth token. */
  patchDepth: number;
  /** Normalisation to undo (default HLIP's 0.449 / 0.226). */
  mean?: number;
  std?: number;
  /** Integer pixel magnification (default: tiles at least 128 px, at most 8×). */
  scale?: number;
  /** Pixels between tiles (default 2). */
  gap?: number;
  /** Overlay opacity (default 0.3) and mask threshold (default 0.25). */
  alpha?: number;
  threshold?: number;
}

export interface Mosaic {
  rgb: Uint8Array;
  width: number;
  height: number;
  rows: number;
  columns: number;
  /** Model slice index shown in each row. */
  slices: number[];
}

const JET: readonly (readonly [number, number])[][] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];

/** Matplotlib's 'jet' (its piecewise linear segment data) at t ∈ [0, 1], as RGB in [0, 1]. */
export function jet(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t));
  return JET.map((pts) => {
    for (let i = 1; i < pts.length; i++) {
      const [x0, y0] = pts[i - 1]!;
      const [x1, y1] = pts[i]!;
      if (x <= x1) return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
    return pts[pts.length - 1]![1];
  }) as [number, number, number];
}

function minMax(a: Float32Array): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of a) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** The mosaic of a study [S, D, H, W] (normalised model input) and its relevance map (same shape). */
export function relevanceMosaic(images: Float32Array, relevance: Float32Array, shape: readonly number[], opts: MosaicOptions): Mosaic {
  const [S, D, H, W] = shape as [number, number, number, number];
  if (shape.length !== 4 || images.length !== S * D * H * W || relevance.length !== images.length) throw new ShapeError(`relevanceMosaic: images and relevance must both be [S, D, H, W] = [${shape.join(', ')}]`);
  const pd = opts.patchDepth;
  const rows = Math.floor(D / pd);
  if (!(Number.isInteger(pd) && pd > 0 && rows > 0)) throw new ShapeError(`relevanceMosaic: patch depth ${pd} does not fit depth ${D}`);
  const mean = opts.mean ?? HLIP_MEAN, std = opts.std ?? HLIP_STD;
  const alpha = opts.alpha ?? 0.3, thr = opts.threshold ?? 0.25;
  const sc = opts.scale ?? Math.min(8, Math.max(1, Math.ceil(128 / Math.max(H, W))));
  const gap = opts.gap ?? 2;
  const tw = W * sc, th = H * sc;
  const width = S * tw + (S - 1) * gap;
  const height = rows * th + (rows - 1) * gap;
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const slices = Array.from({ length: rows }, (_, k) => Math.floor((k + 0.5) * pd));
  const area = H * W;
  slices.forEach((z, k) => {
    for (let s = 0; s < S; s++) {
      const off = (s * D + z) * area;
      const img = images.subarray(off, off + area).map((v) => v * std + mean);
      const rel = relevance.subarray(off, off + area);
      const [ilo, ihi] = minMax(img);
      const [rlo, rhi] = minMax(rel);
      const x0 = s * (tw + gap), y0 = k * (th + gap);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const i = y * W + x;
          const g = ihi > ilo ? (img[i]! - ilo) / (ihi - ilo) : 0;
          let c: [number, number, number] = [g, g, g];
          // Per-slice min–max; a constant slice normalises to 0 (masked), as 0/0 → NaN is in matplotlib.
          const r = rhi > rlo ? (rel[i]! - rlo) / (rhi - rlo) : 0;
          if (r >= thr) {
            const j = jet(r);
            c = [0, 1, 2].map((q) => (1 - alpha) * c[q]! + alpha * j[q]!) as [number, number, number];
          }
          for (let dy = 0; dy < sc; dy++) {
            for (let dx = 0; dx < sc; dx++) {
              const p = ((y0 + y * sc + dy) * width + x0 + x * sc + dx) * 3;
              rgb[p] = Math.round(c[0] * 255);
              rgb[p + 1] = Math.round(c[1] * 255);
              rgb[p + 2] = Math.round(c[2] * 255);
            }
          }
        }
      }
    }
  });
  return { rgb, width, height, rows, columns: S, slices };
}
