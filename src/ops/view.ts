import { ShapeError } from '../errors.js';
import { elementwise } from '../kernels/elementwise.js';
import { axis, contiguousStrides, fmt, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';
import { sumTo } from './reduce.js';
import { zeros } from './creation.js';

/** A strided copy into fresh contiguous memory (no tape: callers record). */
export function copyContiguous(x: Tensor): Tensor {
  const out = Tensor.empty(x.device, x.shape, x.dtype);
  if (x.dtype === 'i32') {
    if (!x.isContiguous) throw new ShapeError('strided copies of i32 tensors are not supported');
    x.device.copyBuffer(x.buffer, x.offset * 4, out.buffer, 0, x.size * 4);
  } else elementwise(x.device, 'a', out, [x]);
  return out;
}

const contiguousOp = defineOp<[Tensor], undefined>({
  name: 'contiguous',
  forward: ([x]) => copyContiguous(x),
  backward: (g) => [g.retainHandle()],
});

/** x itself when already contiguous (a new handle), else a contiguous copy. */
export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) return identityView(x);
  return contiguousOp([x], undefined);
}

const viewOp = defineOp<[Tensor], { shape: readonly number[]; strides: readonly number[]; offset: number; back: (g: Tensor) => Tensor }>({
  name: 'view',
  forward: ([x], p) => x.view(p.shape, p.strides, p.offset),
  backward: (g, { params }) => [params.back(g)],
});

function identityView(x: Tensor): Tensor {
  return viewOp([x], { shape: x.shape, strides: x.strides, offset: x.offset, back: (g) => g.retainHandle() });
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const n = x.size;
  const neg = shape.indexOf(-1);
  let target = [...shape];
  if (neg >= 0) {
    const known = shape.reduce((a, d, i) => (i === neg ? a : a * d), 1);
    if (known === 0 || n % known !== 0) throw new ShapeError(`cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
    target[neg] = n / known;
  }
  if (sizeOf(target) !== n) throw new ShapeError(`cannot reshape ${fmt(x.shape)} (${n} elements) to ${fmt(shape)}`);
  const src = x.isContiguous ? x : contiguous(x);
  const inShape = x.shape;
  const out = viewOp([src], { shape: target, strides: contiguousStrides(target), offset: src.offset, back: (g) => reshape(g, inShape) });
  if (src !== x) src.dispose();
  return out;
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || new Set(perm.map((p) => axis(p, x.ndim))).size !== x.ndim) {
    throw new ShapeError(`permute ${fmt(perm)} is not a permutation of ${x.ndim} axes`);
  }
  const p = perm.map((a) => axis(a, x.ndim));
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => (inv[a] = i));
  return viewOp([x], { shape: p.map((a) => x.shape[a] as number), strides: p.map((a) => x.strides[a] as number), offset: x.offset, back: (g) => permute(g, inv) });
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const p = [...Array(x.ndim).keys()];
  const i = axis(a, x.ndim);
  const j = axis(b, x.ndim);
  [p[i], p[j]] = [p[j] as number, p[i] as number];
  return permute(x, p);
}

/** Broadcasts x to shape (stride-0 view); backward sums over the broadcast axes. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < x.ndim) throw new ShapeError(`cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  const lead = shape.length - x.ndim;
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const xd = x.shape[i - lead] as number;
    if (xd === d) return x.strides[i - lead] as number;
    if (xd === 1) return 0;
    throw new ShapeError(`cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  });
  const inShape = x.shape;
  return viewOp([x], { shape, strides, offset: x.offset, back: (g) => sumTo(g, inShape) });
}

export function unsqueeze(x: Tensor, ax: number): Tensor {
  const a = axis(ax, x.ndim + 1);
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(a, 0, 1);
  strides.splice(a, 0, 0);
  const inShape = x.shape;
  return viewOp([x], { shape, strides, offset: x.offset, back: (g) => reshape(g, inShape) });
}

/** Removes one size-1 axis, or all of them. */
export function squeeze(x: Tensor, ax?: number): Tensor {
  const a = ax === undefined ? -1 : axis(ax, x.ndim);
  const keepAxis = (i: number) => (a < 0 ? x.shape[i] !== 1 : i !== a || x.shape[i] !== 1);
  const idx = [...x.shape.keys()].filter(keepAxis);
  const inShape = x.shape;
  return viewOp([x], { shape: idx.map((i) => x.shape[i] as number), strides: idx.map((i) => x.strides[i] as number), offset: x.offset, back: (g) => reshape(g, inShape) });
}

/** x[start:end:step] along one axis, as a view. */
export function slice(x: Tensor, ax: number, start: number, end: number, step = 1): Tensor {
  const a = axis(ax, x.ndim);
  const n = x.shape[a] as number;
  const s = Math.max(0, Math.min(n, start < 0 ? start + n : start));
  const e = Math.max(s, Math.min(n, end < 0 ? end + n : end));
  if (!Number.isInteger(step) || step < 1) throw new ShapeError(`slice step must be a positive integer, got ${step}`);
  const len = Math.ceil((e - s) / step);
  const shape = [...x.shape];
  shape[a] = len;
  const strides = [...x.strides];
  strides[a] = (x.strides[a] as number) * step;
  const inShape = x.shape;
  return viewOp([x], {
    shape,
    strides,
    offset: x.offset + s * (x.strides[a] as number),
    back: (g) => {
      // Scatter g into zeros of the input shape.
      const full = zeros(g.device, inShape, g.dtype);
      const region = full.view(shape, stridesOf(inShape, a, step), s * (contiguousStrides(inShape)[a] as number));
      elementwise(g.device, 'a', region, [g]);
      region.dispose();
      return full;
    },
  });
}

function stridesOf(shape: readonly number[], a: number, step: number): number[] {
  const st = contiguousStrides(shape);
  st[a] = (st[a] as number) * step;
  return st;
}

export { sizeOf };
