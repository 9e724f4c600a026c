import { isFloat } from '../dtype.js';
import { DTypeError, ShapeError } from '../errors.js';
import { elementwise } from '../kernels/elementwise.js';
import type { View } from '../kernels/view.js';
import { axis as normAxis, fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { full } from './creation.js';
import { defineOp } from './define.js';
import { slice } from './view.js';

/** A sub-block of t (same strides, shifted offset, smaller shape): no handle, just what kernels need. */
function region(t: Tensor, shape: readonly number[], start: readonly number[]): View {
  let offset = t.offset;
  start.forEach((s, i) => (offset += s * (t.strides[i] as number)));
  return { buffer: t.buffer, shape, strides: t.strides, offset, dtype: t.dtype };
}

/** A fresh contiguous copy of a sub-block (backward rules return these, not views of g). */
function copyRegion(g: Tensor, shape: readonly number[], start: readonly number[]): Tensor {
  const out = Tensor.empty(g.device, shape, g.dtype);
  elementwise(g.device, 'a', out, [region(g, shape, start)]);
  return out;
}

/** i32 has no strided kernel: contiguous pieces are copied as byte ranges, one per outer row. */
function copyI32Into(dst: Tensor, src: Tensor, ax: number, at: number): void {
  if (!src.isContiguous || !dst.isContiguous) throw new DTypeError('concat of i32 tensors needs contiguous inputs');
  const outer = src.shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const inner = src.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const rowIn = (src.shape[ax] as number) * inner;
  const rowOut = (dst.shape[ax] as number) * inner;
  for (let o = 0; o < outer; o++) {
    dst.device.copyBuffer(src.buffer, (src.offset + o * rowIn) * 4, dst.buffer, (dst.offset + o * rowOut + at * inner) * 4, rowIn * 4);
  }
}

const concatOp = defineOp<Tensor[], { axis: number }>({
  name: 'concat',
  forward: (xs, { axis }) => {
    const first = xs[0] as Tensor;
    const shape = [...first.shape];
    shape[axis] = xs.reduce((a, x) => a + (x.shape[axis] as number), 0);
    const out = Tensor.empty(first.device, shape, first.dtype);
    let at = 0;
    for (const x of xs) {
      if (x.size > 0) {
        if (x.dtype === 'i32') copyI32Into(out, x, axis, at);
        else {
          const start = shape.map((_, i) => (i === axis ? at : 0));
          elementwise(out.device, 'a', region(out, x.shape, start), [x]);
        }
      }
      at += x.shape[axis] as number;
    }
    return out;
  },
  backward: (g, { inputs, params: { axis } }) => {
    let at = 0;
    return inputs.map((x) => {
      const start = g.shape.map((_, i) => (i === axis ? at : 0));
      at += x.shape[axis] as number;
      return x.requiresGrad ? copyRegion(g, x.shape, start) : null;
    });
  },
});

/** Joins tensors along an existing axis; all other dims and the dtype must agree. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  const first = tensors[0];
  if (!first) throw new ShapeError('concat needs at least one tensor');
  const ax = normAxis(axis, first.ndim);
  for (const t of tensors) {
    if (t.dtype !== first.dtype) throw new DTypeError(`concat: dtypes ${first.dtype} and ${t.dtype} differ`);
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError(`concat along axis ${ax}: ${fmt(t.shape)} does not match ${fmt(first.shape)}`);
    }
  }
  return concatOp([...tensors], { axis: ax });
}

/**
 * Splits x along an axis into views: `sizes` lists the piece lengths (they must add up to the axis
 * length), or a single number gives equal pieces of that length (the last may be shorter).
 */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const ax = normAxis(axis, x.ndim);
  const n = x.shape[ax] as number;
  let list: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes < 1) throw new ShapeError(`split size must be a positive integer, got ${sizes}`);
    list = [];
    for (let s = 0; s < n; s += sizes) list.push(Math.min(sizes, n - s));
  } else {
    list = [...sizes];
    if (list.some((s) => !Number.isInteger(s) || s < 0) || list.reduce((a, b) => a + b, 0) !== n) {
      throw new ShapeError(`split sizes [${list.join(', ')}] do not add up to ${n} (axis ${ax} of ${fmt(x.shape)})`);
    }
  }
  let at = 0;
  return list.map((s) => {
    const piece = slice(x, ax, at, at + s);
    at += s;
    return piece;
  });
}

const padOp = defineOp<[Tensor], { pads: [number, number][]; value: number }>({
  name: 'pad',
  forward: ([x], { pads, value }) => {
    const shape = x.shape.map((d, i) => d + (pads[i] as [number, number])[0] + (pads[i] as [number, number])[1]);
    const out = full(x.device, shape, value, x.dtype);
    if (x.size > 0) elementwise(x.device, 'a', region(out, x.shape, pads.map((p) => p[0])), [x]);
    return out;
  },
  backward: (g, { inputs: [x], params: { pads } }) => [copyRegion(g, x.shape, pads.map((p) => p[0]))],
});

/**
 * Pads every axis with `value`: pads[i] = [before, after] for axis i (one pair per axis; use slice to
 * crop). Backward is the interior block of the gradient.
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  if (!isFloat(x.dtype)) throw new DTypeError(`pad needs a floating tensor, got ${x.dtype}`);
  if (pads.length !== x.ndim) throw new ShapeError(`pad: ${pads.length} [before, after] pairs for ${x.ndim} axes of ${fmt(x.shape)}`);
  for (const p of pads) {
    if (p.length !== 2 || !p.every((v) => Number.isInteger(v) && v >= 0)) throw new ShapeError(`pad amounts must be non-negative integer pairs, got [${p.join(', ')}]`);
  }
  return padOp([x], { pads: pads.map((p) => [p[0], p[1]] as [number, number]), value });
}
