import { ShapeError } from '../errors.js';
import { outputParts, WindowTable } from '../ops/attention.js';
import { repeatRows, segmentMean } from '../ops/segment.js';
import { reshape } from '../ops/view.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * HLIP's token layout (docs/attention.md). The patch tokens of a batch of studies are stored once,
 * study-major (study → scan → slice → in-plane patch), as [T, C] rows; with that order every slice
 * window and every scan window is a contiguous run of rows, so changing the attention window never
 * moves a patch token. The prefix tokens (CLS, register) live apart, [W·P, C] window-major, for the
 * W windows of the current level: they are what changes between levels (hlip-spec §2.6).
 */
export type WindowKind = 'slice' | 'scan' | 'study';

/** One study: `scans` scans of `slices` depth-slabs of `patches` in-plane patch tokens each. */
export interface StudyGrid {
  scans: number;
  slices: number;
  patches: number;
}

const RANK: Record<WindowKind, number> = { slice: 0, scan: 1, study: 2 };

export class TokenLayout {
  readonly studies: readonly StudyGrid[];
  /** Prefix tokens per window (1: CLS; 2: CLS + register in the 2026 models). */
  readonly prefix: number;
  /** Patch tokens over all studies. */
  readonly tokens: number;
  private tables = new Map<WindowKind, WindowTable>();

  /** Studies may differ in scans, slices and patches (a batch of 2-scan and 9-scan MRI studies). */
  constructor(studies: readonly StudyGrid[], prefix = 1) {
    studies.forEach((s, b) => {
      for (const k of ['scans', 'slices', 'patches'] as const) {
        if (!Number.isInteger(s[k]) || s[k] < 1) throw new ShapeError(`study ${b}: ${k} must be a positive integer, got ${s[k]}`);
      }
    });
    if (!Number.isInteger(prefix) || prefix < 0) throw new ShapeError(`prefix token count must be a non-negative integer, got ${prefix}`);
    this.studies = studies.map((s) => ({ ...s }));
    this.prefix = prefix;
    this.tokens = studies.reduce((a, s) => a + s.scans * s.slices * s.patches, 0);
  }

  /** `count` studies with the same grid (the CT case: one scan of 14 × 196). */
  static uniform(count: number, grid: StudyGrid, prefix = 1): TokenLayout {
    return new TokenLayout(Array.from({ length: count }, () => grid), prefix);
  }

  /** Patch tokens of each window of `kind`, in storage order. */
  windowLengths(kind: WindowKind): number[] {
    const out: number[] = [];
    for (const s of this.studies) {
      if (kind === 'study') out.push(s.scans * s.slices * s.patches);
      else if (kind === 'scan') for (let n = 0; n < s.scans; n++) out.push(s.slices * s.patches);
      else for (let n = 0; n < s.scans * s.slices; n++) out.push(s.patches);
    }
    return out;
  }

  windowCount(kind: WindowKind): number {
    return this.studies.reduce((a, s) => a + (kind === 'study' ? 1 : kind === 'scan' ? s.scans : s.scans * s.slices), 0);
  }

  /** Attention windows of `kind` (patch-row runs plus this layout's prefix count); cached. */
  windows(kind: WindowKind): WindowTable {
    let t = this.tables.get(kind);
    if (!t) {
      t = WindowTable.contiguous(this.windowLengths(kind), this.prefix);
      this.tables.set(kind, t);
    }
    return t;
  }

  /** For each window of the coarser `outer` kind, how many windows of the finer `inner` kind it holds. */
  children(inner: WindowKind, outer: WindowKind): number[] {
    if (RANK[inner] > RANK[outer]) throw new ShapeError(`children: ${inner} windows are not inside ${outer} windows`);
    const out: number[] = [];
    for (const s of this.studies) {
      const per = (k: WindowKind) => (k === 'study' ? 1 : k === 'scan' ? s.scans : s.scans * s.slices);
      const n = per(outer);
      for (let i = 0; i < n; i++) out.push(per(inner) / n);
    }
    return out;
  }

  /** Prefix rows expected for `kind`: windows × prefix. */
  prefixRows(kind: WindowKind): number {
    return this.windowCount(kind) * this.prefix;
  }
}

/** [rows, C] → [rows / P, P·C] (a view for contiguous x), so a window's P prefix tokens move as one row. */
function perWindow(x: Tensor, P: number): Tensor {
  const C = x.shape.slice(1).reduce((a, b) => a * b, 1);
  return reshape(x, [(x.shape[0] as number) / P, P * C]);
}

/**
 * The initial prefix rows at `kind`: the learned tokens `tokens` ([P, C]) copied into every window
 * (reference: `cls_token.expand(rows, -1, -1)` after the first partition). Gradients sum over windows.
 */
export function initialPrefix(layout: TokenLayout, kind: WindowKind, tokens: Tensor): Tensor {
  const P = layout.prefix;
  if (tokens.ndim !== 2 || tokens.shape[0] !== P) throw new ShapeError(`initialPrefix: tokens ${fmt(tokens.shape)} must be [${P}, C]`);
  const one = perWindow(tokens, P);
  const rep = repeatRows(one, [layout.windowCount(kind)]);
  const out = reshape(rep, [layout.prefixRows(kind), tokens.shape[1] as number]);
  one.dispose();
  rep.dispose();
  return out;
}

/**
 * Prefix rows [W_from·P, C] at level `from` → [W_to·P, C] at level `to` (hlip-spec §2.6): merging to a
 * coarser level averages each window's copies over the windows it absorbs (`_slice2scan`,
 * `_scan2study`, `_slice2study`: `.mean(dim=1)` over the k copies); partitioning copies each window's
 * prefix tokens into every sub-window (`_study2slice`, …). Patch rows are not involved. Differentiable:
 * the mean's backward divides by k, the copy's backward sums the k copies.
 */
export function regroupPrefix(layout: TokenLayout, prefix: Tensor, from: WindowKind, to: WindowKind): Tensor {
  const P = layout.prefix;
  if (prefix.ndim !== 2 || prefix.shape[0] !== layout.prefixRows(from)) {
    throw new ShapeError(`regroupPrefix: prefix ${fmt(prefix.shape)} must have ${layout.prefixRows(from)} rows (${layout.windowCount(from)} ${from} windows × ${P})`);
  }
  if (from === to || P === 0) return prefix.retainHandle();
  const C = prefix.shape[1] as number;
  const rows = perWindow(prefix, P);
  const merged = RANK[to] > RANK[from] ? segmentMean(rows, layout.children(from, to)) : repeatRows(rows, layout.children(to, from));
  const out = reshape(merged, [layout.prefixRows(to), C]);
  rows.dispose();
  merged.dispose();
  return out;
}

/**
 * Splits an attention output over `kind` windows ([T + W·P, …], the op's layout) into the patch rows
 * [T, …] and the prefix rows [W·P, …], as differentiable views.
 */
export function splitTokens(layout: TokenLayout, kind: WindowKind, o: Tensor): { patch: Tensor; prefix: Tensor } {
  return outputParts(o, layout.windows(kind));
}
