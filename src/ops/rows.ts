import type { DType } from '../dtype.js';
import type { Device } from '../gpu/device.js';
import { elemsWithStats } from '../kernels/rows.js';
import { axis as normAxis, contiguousStrides } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { copyContiguous } from './view.js';

/**
 * Helpers for ops built on the row kernels, which work on the last axis of a contiguous [rows, n]
 * tensor. No tape: they run inside forward and backward rules.
 */
export interface Rows {
  /** Contiguous, with the op's axis last. */
  t: Tensor;
  /** Whether t is a copy the caller must dispose (else it is the input itself). */
  owned: boolean;
  /** The permutation that moved the axis last, or null when it already was. */
  perm: number[] | null;
  rows: number;
  n: number;
}

/** x as contiguous rows along `ax` (x itself when already contiguous with ax last). */
export function toRows(x: Tensor, ax: number): Rows {
  if (x.ndim === 0) return { t: x, owned: false, perm: null, rows: 1, n: 1 };
  const a = normAxis(ax, x.ndim);
  const n = x.shape[a] as number;
  const rows = n === 0 ? 0 : x.size / n;
  if (a === x.ndim - 1) {
    if (x.isContiguous) return { t: x, owned: false, perm: null, rows, n };
    return { t: copyContiguous(x), owned: true, perm: null, rows, n };
  }
  const perm = [...x.shape.keys()].filter((i) => i !== a).concat(a);
  const p = x.view(
    perm.map((i) => x.shape[i] as number),
    perm.map((i) => x.strides[i] as number),
    x.offset,
  );
  const t = copyContiguous(p);
  p.dispose();
  return { t, owned: true, perm, rows, n };
}

/** Releases what toRows made. */
export function releaseRows(r: Rows): void {
  if (r.owned) r.t.dispose();
}

/**
 * Undoes toRows' permutation on a fresh contiguous result y (consumed): a contiguous tensor in the
 * original axis order.
 */
export function fromRows(y: Tensor, perm: readonly number[] | null): Tensor {
  if (!perm) return y;
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  const cs = contiguousStrides(y.shape);
  const v = y.view(
    inv.map((i) => y.shape[i] as number),
    inv.map((i) => cs[i] as number),
    y.offset,
  );
  const out = copyContiguous(v);
  v.dispose();
  y.dispose();
  return out;
}

/**
 * A fresh contiguous tensor of `shape` whose memory also holds `statsFloats` f32 values after its
 * elements (at kernels/rows.ts statsOffset), for statistics the backward reuses. The statistics live
 * as long as the tensor's storage, so any saved view of the output keeps them.
 */
export function emptyWithStats(dev: Device, shape: readonly number[], dtype: DType, statsFloats: number): Tensor {
  const elems = shape.reduce((a, b) => a * b, 1);
  const whole = Tensor.empty(dev, [elemsWithStats(elems, dtype, statsFloats)], dtype);
  const out = whole.view(shape, contiguousStrides(shape), 0);
  whole.dispose();
  return out;
}
