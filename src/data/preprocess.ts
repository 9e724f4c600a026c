// HLIP's input preprocessing (spec §5), reproduced step by step so a volume read here becomes the
// same model input the reference computes:
//
// CT (data/ct_rate/process.py offline + the online loader of zeroshot_*/inference_rad_chestct.py):
//   HU volume [D, H, W] → trilinear (align_corners=False) resize to spacing (3, 1, 1) mm with size
//   int(n · spacing / target) per axis → x = clip((HU − lo) / (hi − lo), 0, 1) with [lo, hi] =
//   [−1150, 350] → 'crop': symmetric zero pad to ≥ (112, 336, 336) then centre crop, or 'resize':
//   trilinear to (112, 336, 336) → (x − 0.449) / 0.226.
// MRI (data/pub_brain_5/*/process.py offline + pub_brain_5_embed.py / inference_pub_brain_5.py online):
//   RPI volume (z, y, x) → axis with the largest spacing becomes depth (coronal (y, z, x), sagittal
//   (x, z, y)) → clip to the 0.5 / 99.5 percentiles (numpy 'linear') and min–max to [0, 1] →
//   zero pad H/W to a square → bilinear to 256 × 256 → nearest-exact depth to num_slices → crop
//   [16:240, 16:240] → (x − 0.449) / 0.226.
// Arithmetic that the reference does in float32 tensors is done in float32 here (Math.fround).
import { ShapeError } from '../errors.js';
import { reorient, type Volume } from '../io/volume.js';
import { padCrop, resizeBilinearHW, resizeNearestExact, resizeTrilinear, transpose3, type Grid3, type Shape3 } from './resample.js';

const f = Math.fround;

/** HLIP normalisation constants: mean/std of timm's ImageNet mean/std (float32 0.449, 0.226). */
export const HLIP_MEAN = 0.449;
export const HLIP_STD = 0.226;

/** A volume's data as a [D, H, W] grid (D = k, H = j, W = i) with per-axis spacing in the same order. */
export function volumeGrid(vol: Volume): { grid: Grid3; spacing: Shape3 } {
  return { grid: { data: vol.data, shape: [vol.dims[2], vol.dims[1], vol.dims[0]] }, spacing: [vol.spacing[2], vol.spacing[1], vol.spacing[0]] };
}

/** torchvision Normalize on a float32 tensor: (x − mean) / std, each step in float32. */
export function normalize(g: Grid3, mean = HLIP_MEAN, std = HLIP_STD): Grid3 {
  const m = f(mean), s = f(std);
  const out = new Float32Array(g.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f(f(g.data[i]! - m) / s);
  return { data: out, shape: g.shape };
}

/** x = clip((x − lo) / (hi − lo), 0, 1), as `(img - lo) / (hi - lo)` then `torch.clip` on float32. */
export function windowIntensity(g: Grid3, lo = -1150, hi = 350): Grid3 {
  if (!(hi > lo)) throw new ShapeError(`window [${lo}, ${hi}] is empty`);
  const a = f(lo), r = f(hi - lo);
  const out = new Float32Array(g.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = f(f(g.data[i]! - a) / r);
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v; // NaN stays NaN, as torch.clip does
  }
  return { data: out, shape: g.shape };
}

/** Sizes of process.py's resample: int(n · spacing / target) per axis (truncation, at least 1). */
export function resampleSize(shape: Shape3, spacing: Shape3, target: Shape3 = [3, 1, 1]): Shape3 {
  return shape.map((n, a) => {
    const s = Math.trunc((n * spacing[a]!) / target[a]!);
    if (!(s >= 1)) throw new ShapeError(`resampling ${n} voxels of ${spacing[a]} mm to ${target[a]} mm leaves no voxel (axis ${a})`);
    return s;
  }) as Shape3;
}

/** Resample a [D, H, W] grid with spacing (d, h, w) mm to `target` spacing by trilinear resizing. */
export function resampleToSpacing(g: Grid3, spacing: Shape3, target: Shape3 = [3, 1, 1]): Grid3 {
  return resizeTrilinear(g, resampleSize(g.shape, spacing, target));
}

/** Symmetric zero pad to at least `size` (pad_lo = pad // 2), then centre crop (start = (n − size) // 2). */
export function centerPadCrop(g: Grid3, size: Shape3, value = 0): Grid3 {
  const pads = g.shape.map((n, a) => {
    const pad = Math.max(size[a]! - n, 0);
    const lo = Math.floor(pad / 2), hi = pad - lo;
    const padded = n + pad;
    const start = Math.floor((padded - size[a]!) / 2);
    return [lo - start, hi - (padded - size[a]! - start)] as [number, number];
  }) as [[number, number], [number, number], [number, number]];
  return padCrop(g, pads, value);
}

export interface CtPreprocessOptions {
  /** HU window [lo, hi] mapped to [0, 1] (default [−1150, 350]). */
  window?: [number, number];
  /** Spacing (d, h, w) in mm to resample to (default [3, 1, 1]); null skips resampling (already done). */
  targetSpacing?: Shape3 | null;
  /** Model grid (default [112, 336, 336]). */
  size?: Shape3;
  /** 'crop' (default): zero pad + centre crop; 'resize': trilinear to `size`. */
  mode?: 'crop' | 'resize';
  mean?: number;
  std?: number;
}

/**
 * CT volume in HU → normalised model input [D, H, W] (default [112, 336, 336]). The volume's own
 * axis order is used (read with orientation 'native' for CT-RATE parity, 'RPI' otherwise).
 */
export function preprocessCt(vol: Volume, opts: CtPreprocessOptions = {}): Grid3 {
  const { grid, spacing } = volumeGrid(vol);
  return preprocessCtGrid(grid, spacing, opts);
}

export function preprocessCtGrid(grid: Grid3, spacing: Shape3, opts: CtPreprocessOptions = {}): Grid3 {
  const [lo, hi] = opts.window ?? [-1150, 350];
  const size = opts.size ?? [112, 336, 336];
  let g = opts.targetSpacing === null ? grid : resampleToSpacing(grid, spacing, opts.targetSpacing ?? [3, 1, 1]);
  g = windowIntensity(g, lo, hi);
  g = (opts.mode ?? 'crop') === 'crop' ? centerPadCrop(g, size) : resizeTrilinear(g, size);
  return normalize(g, opts.mean ?? HLIP_MEAN, opts.std ?? HLIP_STD);
}

/**
 * numpy.percentile(x, q) with the default 'linear' method: virtual index (n − 1)·q/100 between the
 * two order statistics, interpolated as numpy's _lerp does (from the nearer end). NaNs are rejected.
 * The order statistics come from an exact two-pass radix select (O(n), no sort of the whole volume).
 */
export function percentiles(values: Float32Array, qs: number[]): number[] {
  const n = values.length;
  if (n === 0) throw new ShapeError('percentile of an empty array');
  const ranks: number[] = [];
  const plan = qs.map((q) => {
    const vi = (n - 1) * (q / 100);
    const lo = Math.min(Math.max(Math.floor(vi), 0), n - 1);
    const hi = Math.min(lo + 1, n - 1);
    ranks.push(lo, hi);
    return { lo, hi, t: vi - lo };
  });
  const stats = orderStatistics(values, ranks);
  return plan.map(({ lo, hi, t }) => {
    const a = stats.get(lo)!, b = stats.get(hi)!;
    const diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  });
}

/** Float32 bits → unsigned keys in the same order as the floats (−0 just below +0). */
function sortKey(bits: number): number {
  return (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
}

function keyToFloat(key: number): number {
  const bits = key & 0x80000000 ? key & 0x7fffffff : ~key;
  const u = new Uint32Array([bits >>> 0]);
  return new Float32Array(u.buffer)[0]!;
}

/** Exact k-th smallest values for every rank in `ranks`: a 16-bit histogram of the high key bits, then of the low bits. */
function orderStatistics(values: Float32Array, ranks: number[]): Map<number, number> {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const high = new Float64Array(65536);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) throw new ShapeError('percentile of an array holding NaN');
    high[sortKey(b) >>> 16]++;
  }
  const wanted = [...new Set(ranks)];
  // For each rank: its high bucket and its rank inside that bucket.
  const where = wanted.map((k) => {
    let acc = 0, bucket = 0;
    for (; bucket < 65536; bucket++) {
      if (acc + high[bucket]! > k) break;
      acc += high[bucket]!;
    }
    return { k, bucket, inner: k - acc };
  });
  const buckets = [...new Set(where.map((w) => w.bucket))];
  const slot = new Int32Array(65536).fill(-1);
  buckets.forEach((b, j) => { slot[b] = j; });
  const low = buckets.map(() => new Float64Array(65536));
  for (let i = 0; i < bits.length; i++) {
    const key = sortKey(bits[i]!);
    const j = slot[key >>> 16]!;
    if (j >= 0) low[j]![key & 0xffff]++;
  }
  const out = new Map<number, number>();
  for (const w of where) {
    const h = low[slot[w.bucket]!]!;
    let acc = 0, l = 0;
    for (; l < 65536; l++) {
      if (acc + h[l]! > w.inner) break;
      acc += h[l]!;
    }
    out.set(w.k, keyToFloat(((w.bucket << 16) | l) >>> 0));
  }
  return out;
}

/**
 * Pub-Brain-5 `clip_by_percentile`: clip to the [pLo, pHi] percentiles, then (x − min) / (max − min + 1e-8)
 * (computed in float64 as numpy does for the integer volumes the scripts read).
 */
export function clipByPercentile(g: Grid3, pLo = 0.5, pHi = 99.5): Grid3 {
  const [lower, upper] = percentiles(g.data, [pLo, pHi]) as [number, number];
  const clip = (v: number) => Math.min(Math.max(v, lower), upper);
  let mn = Infinity, mx = -Infinity;
  for (let i = 0; i < g.data.length; i++) {
    const v = clip(g.data[i]!);
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  const den = mx - mn + 1e-8;
  const out = new Float32Array(g.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (clip(g.data[i]!) - mn) / den;
  return { data: out, shape: g.shape };
}

export type MriView = 'axial' | 'coronal' | 'sagittal';

/**
 * process.py `transpose2dhw`: from an RPI (z, y, x) grid, make the axis with the largest spacing the
 * depth (ties keep the earlier axis, as np.argmax does). `depthAxis: 'keep'` skips it (BraTS).
 */
export function toDepthFirst(g: Grid3, spacing: Shape3, depthAxis: 'largest-spacing' | 'keep' = 'largest-spacing'): { grid: Grid3; view: MriView; spacing: Shape3 } {
  if (depthAxis === 'keep') return { grid: g, view: 'axial', spacing };
  let arg = 0;
  for (let a = 1; a < 3; a++) if (spacing[a]! > spacing[arg]!) arg = a;
  if (arg === 0) return { grid: g, view: 'axial', spacing };
  if (arg === 1) return { grid: transpose3(g, [1, 0, 2]), view: 'coronal', spacing: [spacing[1], spacing[0], spacing[2]] };
  return { grid: transpose3(g, [2, 0, 1]), view: 'sagittal', spacing: [spacing[2], spacing[0], spacing[1]] };
}

export interface MriScanOptions {
  /** 'largest-spacing' (default) or 'keep' (BraTS in the reference). */
  depthAxis?: 'largest-spacing' | 'keep';
  /** Percentile clip bounds (default 0.5, 99.5). */
  percentiles?: [number, number];
}

/**
 * The offline Pub-Brain-5 step: reorient to RPI, choose the depth axis, percentile clip and min–max
 * to [0, 1]. Result: the [D, H, W] scan the reference saves as a .pt file.
 */
export function prepareMriScan(vol: Volume, opts: MriScanOptions = {}): { grid: Grid3; view: MriView } {
  const rpi = vol.orientation === 'RPI' ? vol : reorient(vol, 'RPI');
  const { grid, spacing } = volumeGrid(rpi);
  const t = toDepthFirst(grid, spacing, opts.depthAxis);
  const [lo, hi] = opts.percentiles ?? [0.5, 99.5];
  return { grid: clipByPercentile(t.grid, lo, hi), view: t.view };
}

export interface MriInputOptions {
  /** Depth after nearest-exact resizing (reference: 48 train, 144 eval, 72 demo; default 144). */
  numSlices?: number;
  /** In-plane resize before the crop (default 256) and crop size (default 224). */
  resize?: number;
  crop?: number;
  mean?: number;
  std?: number;
}

/** The online step on a [0, 1] scan: square pad, bilinear 256², nearest-exact depth, centre crop, normalise. */
export function mriModelInput(scan: Grid3, opts: MriInputOptions = {}): Grid3 {
  const numSlices = opts.numSlices ?? 144;
  const resize = opts.resize ?? 256;
  const crop = opts.crop ?? 224;
  if (crop > resize) throw new ShapeError(`crop ${crop} is larger than the resize ${resize}`);
  const [, h, w] = scan.shape;
  const side = Math.max(h, w);
  const padH = side - h, padW = side - w;
  const top = Math.floor(padH / 2), left = Math.floor(padW / 2);
  let g = padCrop(scan, [[0, 0], [top, padH - top], [left, padW - left]]);
  g = resizeBilinearHW(g, resize, resize);
  g = resizeNearestExact(g, [numSlices, resize, resize]);
  const c0 = Math.floor((resize - crop) / 2); // 16 for 256 → 224, as the reference's [16:240]
  g = padCrop(g, [[0, 0], [-c0, -(resize - crop - c0)], [-c0, -(resize - crop - c0)]]);
  return normalize(g, opts.mean ?? HLIP_MEAN, opts.std ?? HLIP_STD);
}

/** Full MRI pipeline for one scan: prepareMriScan then mriModelInput → [numSlices, 224, 224]. */
export function preprocessMri(vol: Volume, opts: MriScanOptions & MriInputOptions = {}): Grid3 {
  return mriModelInput(prepareMriScan(vol, opts).grid, opts);
}
