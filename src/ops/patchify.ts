import { ShapeError } from '../errors.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { linear } from './matmul.js';
import { contiguous, permute, reshape, slice } from './view.js';

export type Patch3d = readonly [number, number, number];

/**
 * Non-overlapping 3-D patches as rows: x [B, C, D, H, W] → [B, nd·nh·nw, C·pd·ph·pw], tokens in
 * (d, h, w) order (d slowest), features in (c, kd, kh, kw) order, i.e. the im2col of a Conv3d whose
 * stride equals its kernel. Trailing voxels that do not fill a patch are dropped, as the strided conv
 * drops them. A view (slice, reshape, permute) plus one contiguous copy; differentiable through those.
 */
export function patchify3d(x: Tensor, patch: Patch3d): Tensor {
  if (x.ndim !== 5) throw new ShapeError(`patchify3d expects [B, C, D, H, W], got ${fmt(x.shape)}`);
  const [B, C, D, H, W] = x.shape as [number, number, number, number, number];
  const [pd, ph, pw] = patch;
  for (const p of patch) if (!Number.isInteger(p) || p < 1) throw new ShapeError(`patchify3d: patch sizes must be positive integers, got ${fmt(patch)}`);
  const nd = Math.floor(D / pd);
  const nh = Math.floor(H / ph);
  const nw = Math.floor(W / pw);
  const owned: Tensor[] = [];
  let t = x;
  for (const [ax, n] of [[2, nd * pd], [3, nh * ph], [4, nw * pw]] as const) {
    if (t.shape[ax] !== n) owned.push((t = slice(t, ax, 0, n)));
  }
  owned.push((t = reshape(t, [B, C, nd, pd, nh, ph, nw, pw])));
  owned.push((t = permute(t, [0, 2, 4, 6, 1, 3, 5, 7])));
  owned.push((t = contiguous(t)));
  const out = reshape(t, [B, nd * nh * nw, C * pd * ph * pw]);
  for (const o of owned) o.dispose();
  return out;
}

/**
 * HLIP's PatchEmbed3D projection: Conv3d(C → E, kernel = stride = patch) with weight [E, C, pd, ph, pw]
 * and bias [E], computed as patchify3d + linear. Returns [B, nd·nh·nw, E] (tokens d-major, then h, w).
 */
export function patchEmbed3d(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.ndim !== 5) throw new ShapeError(`patchEmbed3d weight must be [E, C, pd, ph, pw], got ${fmt(weight.shape)}`);
  const [E, C, pd, ph, pw] = weight.shape as [number, number, number, number, number];
  if (x.ndim !== 5 || x.shape[1] !== C) throw new ShapeError(`patchEmbed3d: input ${fmt(x.shape)} does not have the weight's ${C} channels`);
  const rows = patchify3d(x, [pd, ph, pw]);
  const w2 = reshape(weight, [E, C * pd * ph * pw]);
  const y = linear(rows, w2, bias);
  rows.dispose();
  w2.dispose();
  return y;
}
