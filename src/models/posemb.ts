import { ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { matmul } from '../ops/matmul.js';
import { gather } from '../ops/gather.js';
import { contiguous, reshape, slice } from '../ops/view.js';
import { noGrad, scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * Fixed sin-cos position tables of HLIP (`pos_embed.py`) and their resampling as torch's
 * `F.interpolate(mode='linear' | 'trilinear', align_corners=False)` does it.
 */

/**
 * 1-D sin-cos embedding (MAE's `get_1d_sincos_pos_embed_from_grid`): for each integer position p,
 * `[sin(p·ω_0) … sin(p·ω_{m-1}), cos(p·ω_0) … cos(p·ω_{m-1})]` with m = dim/2 and
 * ω_k = 10000^(−k/m). Row-major [positions.length, dim]. Computed in float64, rounded once.
 */
export function sincos1d(dim: number, positions: ArrayLike<number>): Float32Array {
  if (dim % 2 !== 0) throw new ShapeError(`sincos1d: embedding dim ${dim} must be even`);
  const m = dim / 2;
  const out = new Float32Array(positions.length * dim);
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i] as number;
    for (let k = 0; k < m; k++) {
      const a = p / Math.pow(10000, k / m);
      out[i * dim + k] = Math.sin(a);
      out[i * dim + m + k] = Math.cos(a);
    }
  }
  return out;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * HLIP's from-scratch 3-D table [d, h, w, C]: C/3 channels per axis concatenated in the order
 * [w | h | d], each a 1-D sin-cos of the integer index (hlip-spec §2.3 (b)).
 */
export function sincos3d(grid: readonly [number, number, number], dim: number): Float32Array {
  if (dim % 6 !== 0) throw new ShapeError(`sincos3d: embedding dim ${dim} must be a multiple of 6`);
  const [D, H, W] = grid;
  const a = dim / 3;
  const ed = sincos1d(a, range(D));
  const eh = sincos1d(a, range(H));
  const ew = sincos1d(a, range(W));
  const out = new Float32Array(D * H * W * dim);
  let o = 0;
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++) {
        out.set(ew.subarray(w * a, (w + 1) * a), o);
        out.set(eh.subarray(h * a, (h + 1) * a), o + a);
        out.set(ed.subarray(d * a, (d + 1) * a), o + 2 * a);
        o += dim;
      }
  return out;
}

/**
 * The [out, in] matrix of 1-D linear interpolation with align_corners=False (PyTorch's source index
 * `(i + 0.5)·in/out − 0.5`, clamped at 0, neighbours clamped at the last index). Identity when equal.
 */
export function linearInterpMatrix(outSize: number, inSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    if (outSize === inSize) {
      m[i * inSize + i] = 1;
      continue;
    }
    const src = Math.max(0, (i + 0.5) * scale - 0.5);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const l1 = src - i0;
    m[i * inSize + i0] = (m[i * inSize + i0] as number) + (1 - l1);
    m[i * inSize + i1] = (m[i * inSize + i1] as number) + l1;
  }
  return m;
}

/**
 * Resamples a [1, d0, h0, w0, C] table to [1, d, h, w, C] (trilinear, align_corners=False) as three
 * separable interpolation matrix products on the GPU. No gradient (the tables are frozen). Returns a
 * new tensor owned by the caller (a fresh handle of `table` when the grid already matches).
 */
export function resampleSpatial(table: Tensor, grid: readonly [number, number, number]): Tensor {
  if (table.ndim !== 5 || table.shape[0] !== 1) throw new ShapeError(`resampleSpatial: expected [1, d, h, w, C], got [${table.shape.join(', ')}]`);
  const [, d0, h0, w0, C] = table.shape as [number, number, number, number, number];
  const [d, h, w] = grid;
  if (d === d0 && h === h0 && w === w0) return table.retainHandle();
  const dev = table.device;
  return noGrad(() =>
    scope(() => {
      const mat = (o: number, i: number) => Tensor.from(dev, linearInterpMatrix(o, i), [o, i], table.dtype);
      // Depth: [d, d0] @ [d0, h0·w0·C].
      let t = matmul(mat(d, d0), reshape(table, [d0, h0 * w0 * C]));
      // Height: batched over d, [h, h0] @ [h0, w0·C].
      t = matmul(mat(h, h0), reshape(t, [d, h0, w0 * C]));
      // Width: batched over d·h, [w, w0] @ [w0, C].
      t = matmul(mat(w, w0), reshape(t, [d * h, w0, C]));
      return contiguous(reshape(t, [1, d, h, w, C]));
    }),
  );
}

/**
 * Rows of a [1, M, C] scan-order table for N scans (HLIP `resample_1d_posemb`): `positions` picks rows
 * (training draws them at random), otherwise rows 0..N-1 when N ≤ M and linear interpolation
 * (align_corners=False) of the M rows to N when N > M. Returns [N, C], no gradient.
 */
export function sequentialRows(table: Tensor, n: number, positions?: readonly number[]): Tensor {
  const [, M, C] = table.shape as [number, number, number];
  const dev: Device = table.device;
  return noGrad(() =>
    scope(() => {
      const t2 = reshape(table, [M, C]);
      if (positions) {
        if (positions.length !== n || positions.some((p) => !Number.isInteger(p) || p < 0 || p >= M)) {
          throw new ShapeError(`sequentialRows: need ${n} positions in [0, ${M}), got [${positions.join(', ')}]`);
        }
        return gather(t2, positions);
      }
      if (n <= M) return contiguous(slice(t2, 0, 0, n));
      return matmul(Tensor.from(dev, linearInterpMatrix(n, M), [n, M], table.dtype), t2);
    }),
  );
}
