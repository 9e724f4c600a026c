// timm PatchDropout as HLIP uses it (hlip-spec §2.9): training only, applied to the rows of the
// initial partition right after the position embedding; each row keeps its prefix token(s) and the
// first max(1, ⌊L·(1−p)⌋) patch tokens of argsort(randn(L)) (unordered, as timm's default).
import { ShapeError } from '../errors.js';
import { PhiloxStream } from '../tensor/rng.js';
import type { Level } from './configs.js';
import { windowsOf, type TokenGrid } from './hierarchy.js';

/** Patch tokens a row of `len` keeps at drop rate p: max(1, int(len·(1−p))), as timm computes it. */
export function patchKeepCount(len: number, p: number): number {
  if (!(p >= 0 && p < 1)) throw new ShapeError(`patch dropout rate must be in [0, 1), got ${p}`);
  return Math.max(1, Math.floor(len * (1 - p)));
}

/**
 * Kept token indices into the flat [rows·len] patch rows, row-major [rows, K]: row r keeps
 * r·len + argsort(z_r)[0..K), z_r[j] = Philox normal r·len + j under `seed` (src/tensor/rng.ts),
 * so every runtime draws the same selection. Ties (never seen in practice) keep index order.
 */
export function patchDropIndices(rows: number, len: number, p: number, seed: number): Int32Array {
  const K = patchKeepCount(len, p);
  const rng = new PhiloxStream(seed);
  const out = new Int32Array(rows * K);
  const z = new Float64Array(len);
  const order = Array.from({ length: len }, (_, j) => j);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < len; j++) {
      z[j] = rng.normal(r * len + j);
      order[j] = j;
    }
    order.sort((a, b) => (z[a] as number) - (z[b] as number) || a - b);
    for (let k = 0; k < K; k++) out[r * K + k] = r * len + (order[k] as number);
  }
  return out;
}

const RANK: Record<Level, number> = { slice: 0, scan: 1, study: 2 };

/**
 * The token grid after dropout, so every later window (slice, scan, study) is built over the kept
 * tokens exactly as the reference reshapes them: each initial row holds K tokens, a coarser level
 * concatenates whole rows, and a finer level than the initial one (scan-first models with slice
 * blocks, …) cuts each row into equal consecutive chunks, which needs K divisible by their count.
 */
export function keptGrid(g: TokenGrid, levels: readonly Level[], K: number): TokenGrid {
  const first = levels[0] as Level;
  const finest = levels.reduce<Level>((a, l) => (RANK[l] < RANK[a] ? l : a), first);
  const sub = windowsOf(finest, g).count / windowsOf(first, g).count;
  if (K % sub !== 0) {
    throw new ShapeError(`patch dropout keeps ${K} tokens per ${first} row, which cannot be split into the ${sub} ${finest} windows of a later block; choose a rate that keeps a multiple of ${sub}`);
  }
  if (finest === 'slice') return { B: g.B, N: g.N, d: g.d, h: 1, w: K / sub };
  if (finest === 'scan') return { B: g.B, N: g.N, d: 1, h: 1, w: K / sub };
  return { B: g.B, N: 1, d: 1, h: 1, w: K };
}
