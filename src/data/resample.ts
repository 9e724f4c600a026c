// Interpolation on row-major [D, H, W] float32 grids, following PyTorch's CPU F.interpolate:
// 'trilinear' / 'bilinear' with align_corners=False and 'nearest-exact'. Index and weight arithmetic
// is done in float32 (Math.fround) the way PyTorch computes it for float tensors; the weighted sums
// are accumulated in float64 and rounded once, so results agree with PyTorch to within an ulp or so
// (PyTorch's own rounding depends on its vectorised path and FMA use). Pure TypeScript: the same
// numbers in Node and browsers. (Resampling a full CT is ~10⁷ outputs × 8 taps; a GPU kernel would
// pay off for batch preprocessing, but a single study takes well under a second on the CPU.)
import { ShapeError } from '../errors.js';

export type Shape3 = [number, number, number];

/** A row-major [D, H, W] float32 grid. */
export interface Grid3 {
  data: Float32Array;
  shape: Shape3;
}

const f = Math.fround;

export function grid3(data: Float32Array, shape: Shape3): Grid3 {
  if (!shape.every((s) => Number.isSafeInteger(s) && s > 0) || data.length !== shape[0] * shape[1] * shape[2]) {
    throw new ShapeError(`grid of ${data.length} values does not have shape [${shape.join(', ')}]`);
  }
  return { data, shape };
}

interface LinearTable {
  i0: Int32Array;
  i1: Int32Array;
  w0: Float64Array;
  w1: Float64Array;
}

/** PyTorch's align_corners=False source indices and weights for one axis (scale = in/out as float). */
export function linearTable(inSize: number, outSize: number): LinearTable {
  const scale = f(inSize / outSize);
  const t: LinearTable = { i0: new Int32Array(outSize), i1: new Int32Array(outSize), w0: new Float64Array(outSize), w1: new Float64Array(outSize) };
  for (let o = 0; o < outSize; o++) {
    let src = f(f(scale * f(o + 0.5)) - 0.5);
    if (src < 0) src = 0;
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const l1 = Math.min(Math.max(f(src - i0), 0), 1);
    t.i0[o] = i0;
    t.i1[o] = i0 < inSize - 1 ? i0 + 1 : i0;
    t.w1[o] = l1;
    t.w0[o] = f(1 - l1);
  }
  return t;
}

/** PyTorch's 'nearest-exact' source index: min(floor((o + 0.5) · in/out), in − 1), in float32. */
export function nearestExactTable(inSize: number, outSize: number): Int32Array {
  const scale = f(inSize / outSize);
  const t = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) t[o] = Math.min(Math.floor(f((o + 0.5) * scale)), inSize - 1);
  return t;
}

function checkSize(size: Shape3, what: string): void {
  if (!size.every((s) => Number.isSafeInteger(s) && s > 0)) throw new ShapeError(`${what}: output size [${size.join(', ')}] must be positive integers`);
}

/** F.interpolate(x[None, None], size, mode='trilinear', align_corners=False). */
export function resizeTrilinear(g: Grid3, size: Shape3): Grid3 {
  checkSize(size, 'resizeTrilinear');
  const [D, H, W] = g.shape;
  const [od, oh, ow] = size;
  const td = linearTable(D, od), th = linearTable(H, oh), tw = linearTable(W, ow);
  const out = new Float32Array(od * oh * ow);
  const x = g.data;
  const plane = H * W;
  let o = 0;
  for (let d = 0; d < od; d++) {
    const d0 = td.i0[d]! * plane, d1 = td.i1[d]! * plane, wd0 = td.w0[d]!, wd1 = td.w1[d]!;
    for (let h = 0; h < oh; h++) {
      const h0 = th.i0[h]! * W, h1 = th.i1[h]! * W, wh0 = th.w0[h]!, wh1 = th.w1[h]!;
      const a = d0 + h0, b = d0 + h1, c = d1 + h0, e = d1 + h1;
      for (let w = 0; w < ow; w++) {
        const w0 = tw.i0[w]!, w1 = tw.i1[w]!, ww0 = tw.w0[w]!, ww1 = tw.w1[w]!;
        const top = wh0 * (ww0 * x[a + w0]! + ww1 * x[a + w1]!) + wh1 * (ww0 * x[b + w0]! + ww1 * x[b + w1]!);
        const bot = wh0 * (ww0 * x[c + w0]! + ww1 * x[c + w1]!) + wh1 * (ww0 * x[e + w0]! + ww1 * x[e + w1]!);
        out[o++] = wd0 * top + wd1 * bot;
      }
    }
  }
  return { data: out, shape: [od, oh, ow] };
}

/** F.interpolate(x[None], size=(oh, ow), mode='bilinear', align_corners=False): D acts as channels. */
export function resizeBilinearHW(g: Grid3, oh: number, ow: number): Grid3 {
  checkSize([g.shape[0], oh, ow], 'resizeBilinearHW');
  const [D, H, W] = g.shape;
  const th = linearTable(H, oh), tw = linearTable(W, ow);
  const out = new Float32Array(D * oh * ow);
  const x = g.data;
  let o = 0;
  for (let d = 0; d < D; d++) {
    const base = d * H * W;
    for (let h = 0; h < oh; h++) {
      const a = base + th.i0[h]! * W, b = base + th.i1[h]! * W, wh0 = th.w0[h]!, wh1 = th.w1[h]!;
      for (let w = 0; w < ow; w++) {
        const w0 = tw.i0[w]!, w1 = tw.i1[w]!, ww0 = tw.w0[w]!, ww1 = tw.w1[w]!;
        out[o++] = wh0 * (ww0 * x[a + w0]! + ww1 * x[a + w1]!) + wh1 * (ww0 * x[b + w0]! + ww1 * x[b + w1]!);
      }
    }
  }
  return { data: out, shape: [D, oh, ow] };
}

/** F.interpolate(x[None, None], size, mode='nearest-exact'). */
export function resizeNearestExact(g: Grid3, size: Shape3): Grid3 {
  checkSize(size, 'resizeNearestExact');
  const [, H, W] = g.shape;
  const [od, oh, ow] = size;
  const td = nearestExactTable(g.shape[0], od), th = nearestExactTable(H, oh), tw = nearestExactTable(W, ow);
  const out = new Float32Array(od * oh * ow);
  let o = 0;
  for (let d = 0; d < od; d++) {
    for (let h = 0; h < oh; h++) {
      const row = (td[d]! * H + th[h]!) * W;
      for (let w = 0; w < ow; w++) out[o++] = g.data[row + tw[w]!]!;
    }
  }
  return { data: out, shape: [od, oh, ow] };
}

/**
 * Constant padding then cropping per axis: `pad[a] = [before, after]` (negative = crop), like
 * torch.nn.functional.pad with negative pads. Used for the symmetric pads and centre crops.
 */
export function padCrop(g: Grid3, pad: [[number, number], [number, number], [number, number]], value = 0): Grid3 {
  const [D, H, W] = g.shape;
  const size: Shape3 = [D + pad[0][0] + pad[0][1], H + pad[1][0] + pad[1][1], W + pad[2][0] + pad[2][1]];
  checkSize(size, 'padCrop');
  const out = new Float32Array(size[0] * size[1] * size[2]);
  if (value !== 0) out.fill(value);
  const [pd, ph, pw] = [pad[0][0], pad[1][0], pad[2][0]];
  // Overlap in output coordinates.
  const d0 = Math.max(0, pd), d1 = Math.min(size[0], D + pd);
  const h0 = Math.max(0, ph), h1 = Math.min(size[1], H + ph);
  const w0 = Math.max(0, pw), w1 = Math.min(size[2], W + pw);
  if (w1 > w0) {
    for (let d = d0; d < d1; d++) {
      for (let h = h0; h < h1; h++) {
        const src = ((d - pd) * H + (h - ph)) * W + (w0 - pw);
        out.set(g.data.subarray(src, src + (w1 - w0)), (d * size[1] + h) * size[2] + w0);
      }
    }
  }
  return { data: out, shape: size };
}

/** Transpose a grid's axes: `perm[i]` is the source axis of output axis i (np.transpose semantics). */
export function transpose3(g: Grid3, perm: Shape3): Grid3 {
  if ([...perm].sort().join() !== '0,1,2') throw new ShapeError(`transpose3: [${perm.join(', ')}] is not a permutation of 0, 1, 2`);
  const shape = perm.map((p) => g.shape[p]!) as Shape3;
  const st = [g.shape[1] * g.shape[2], g.shape[2], 1];
  const [s0, s1, s2] = perm.map((p) => st[p]!) as Shape3;
  const out = new Float32Array(g.data.length);
  let o = 0;
  for (let a = 0; a < shape[0]; a++) {
    for (let b = 0; b < shape[1]; b++) {
      let p = a * s0 + b * s1;
      for (let c = 0; c < shape[2]; c++, p += s2) out[o++] = g.data[p]!;
    }
  }
  return { data: out, shape };
}
