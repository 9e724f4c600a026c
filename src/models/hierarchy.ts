import { ShapeError } from '../errors.js';
import { WindowTable } from '../ops/attention.js';
import { concat } from '../ops/concat.js';
import { mean } from '../ops/reduce.js';
import { expand, reshape, slice } from '../ops/view.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Level } from './configs.js';

/**
 * HLIP's hierarchical partitions on a flat token layout. The residual stream is one tensor
 * X = [T + W·P, C]: the T patch tokens in lexicographic (b, n, d, h, w) order — identical for every
 * level, so re-partitioning never moves them — followed by the P prefix tokens (class, registers) of
 * each of the W windows of the current level, window-major. This is exactly the attention op's
 * output layout, so blocks run without any reshuffling; only the prefix rows change between levels
 * (mean over the merged copies when coarsening, a copy into every window when refining).
 */

/** Token grid of one forward: B studies, N scans, d×h×w patches per scan. */
export interface TokenGrid {
  B: number;
  N: number;
  d: number;
  h: number;
  w: number;
}

const RANK: Record<Level, number> = { slice: 0, scan: 1, study: 2 };

/** Windows (rows of the reference layout) and patch tokens per window at a level. */
export function windowsOf(level: Level, g: TokenGrid): { count: number; len: number } {
  const hw = g.h * g.w;
  if (level === 'slice') return { count: g.B * g.N * g.d, len: hw };
  if (level === 'scan') return { count: g.B * g.N, len: g.d * hw };
  return { count: g.B, len: g.N * g.d * hw };
}

export const patchTokens = (g: TokenGrid): number => g.B * g.N * g.d * g.h * g.w;

export function windowTable(level: Level, g: TokenGrid, prefix: number): WindowTable {
  const { count, len } = windowsOf(level, g);
  return WindowTable.uniform(count, len, prefix);
}

/**
 * Prefix rows [W_from·P, C] → [W_to·P, C]. Coarsening averages the k consecutive windows that merge
 * (reference `_slice2scan`, `_scan2study`, `_slice2study`: `.mean(dim=1)`); refining copies each prefix
 * token into its k sub-windows (`_study2scan`, …: expand). Differentiable.
 */
export function repartitionPrefix(prefix: Tensor, from: Level, to: Level, g: TokenGrid, P: number): Tensor {
  const C = prefix.shape[1] as number;
  const a = windowsOf(from, g).count;
  const b = windowsOf(to, g).count;
  if (prefix.shape[0] !== a * P) throw new ShapeError(`repartitionPrefix: ${prefix.shape[0]} prefix rows, ${from} level needs ${a} × ${P}`);
  return scope(() => {
    if (from === to) return prefix.retainHandle();
    if (RANK[to] > RANK[from]) {
      const k = a / b;
      return reshape(mean(reshape(prefix, [b, k, P, C]), 1), [b * P, C]);
    }
    const k = b / a;
    return reshape(expand(reshape(prefix, [a, 1, P, C]), [a, k, P, C]), [b * P, C]);
  });
}

/** Re-partitions the whole stream X (patch rows untouched, prefix rows as above). */
export function repartition(x: Tensor, from: Level, to: Level, g: TokenGrid, P: number): Tensor {
  if (from === to) return x.retainHandle();
  const T = patchTokens(g);
  return scope(() => {
    const pre = repartitionPrefix(slice(x, 0, T, x.shape[0] as number), from, to, g, P);
    return concat([slice(x, 0, 0, T), pre], 0);
  });
}

/** The reference row layout of X at a level: [W, P + L, C], each row's prefix tokens first. */
export function toRowLayout(x: Tensor, level: Level, g: TokenGrid, P: number): Tensor {
  const { count, len } = windowsOf(level, g);
  const T = count * len;
  const C = x.shape[1] as number;
  if (x.shape[0] !== T + count * P) throw new ShapeError(`toRowLayout: X has ${x.shape[0]} rows, the ${level} level needs ${T} + ${count}·${P}`);
  return scope(() => {
    const patch = reshape(slice(x, 0, 0, T), [count, len, C]);
    if (P === 0) return patch;
    return concat([reshape(slice(x, 0, T, T + count * P), [count, P, C]), patch], 1);
  });
}
