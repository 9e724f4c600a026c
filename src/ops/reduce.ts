import { reduce as reduceKernel, type ReduceOp } from '../kernels/reduce.js';
import { axis as normAxis, fmt, sameShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat } from '../dtype.js';
import { ShapeError } from '../errors.js';
import { defineOp } from './define.js';
import { copyContiguous, expand, permute, reshape } from './view.js';
import { binaryKernel, scale } from './elementwise.js';
import { full } from './creation.js';

interface ReduceParams {
  axes: number[];
  keepdim: boolean;
}

function normAxes(x: Tensor, axes: number | readonly number[] | undefined): number[] {
  if (axes === undefined) return [...x.shape.keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = [...new Set(list.map((a) => normAxis(a, x.ndim)))].sort((a, b) => a - b);
  return out;
}

function outShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Raw reduction (no tape): moves the axes into one contiguous block and launches the kernel. */
function runReduce(op: ReduceOp, x: Tensor, axes: readonly number[], keepdim: boolean): Tensor {
  assertFloat(x.dtype, op);
  const shape = outShape(x.shape, axes, keepdim);
  const out = Tensor.empty(x.device, shape, x.dtype);
  if (out.size === 0) return out;
  if (axes.length === 0) {
    out.dispose();
    return copyContiguous(x);
  }
  // Contiguous block of reduced axes [first..last] in a contiguous input → no copy.
  const first = axes[0] as number;
  const last = axes[axes.length - 1] as number;
  let src = x;
  let outer: number;
  let r: number;
  let inner: number;
  const prod = (a: number, b: number) => x.shape.slice(a, b).reduce((p, d) => p * d, 1);
  if (x.isContiguous && last - first + 1 === axes.length) {
    outer = prod(0, first);
    r = prod(first, last + 1);
    inner = prod(last + 1, x.ndim);
  } else {
    const kept = [...x.shape.keys()].filter((i) => !axes.includes(i));
    const p = permute(x, [...kept, ...axes]);
    src = copyContiguous(p);
    p.dispose();
    outer = kept.reduce((a, i) => a * (x.shape[i] as number), 1);
    r = axes.reduce((a, i) => a * (x.shape[i] as number), 1);
    inner = 1;
  }
  if (r === 0) {
    // Empty reduction: sum/mean of nothing is 0 (mean NaN), max is -inf.
    src !== x && src.dispose();
    out.dispose();
    return full(x.device, shape, op === 'sum' ? 0 : op === 'mean' ? NaN : -Infinity, x.dtype);
  }
  reduceKernel(x.device, op, src, out, outer, r, inner);
  if (src !== x) src.dispose();
  return out;
}


/** Broadcast g (reduced shape) back over x's shape. */
function unreduce(g: Tensor, xShape: readonly number[], axes: readonly number[], keepdim: boolean): Tensor {
  const kd = keepdim ? g : reshape(g, outShape(xShape, axes, true));
  const e = expand(kd, xShape);
  if (kd !== g) kd.dispose();
  return e;
}

const sumOp = defineOp<[Tensor], ReduceParams>({
  name: 'sum',
  forward: ([x], p) => runReduce('sum', x, p.axes, p.keepdim),
  backward: (g, { inputs: [x], params: p }) => [unreduce(g, x.shape, p.axes, p.keepdim)],
});

const meanOp = defineOp<[Tensor], ReduceParams>({
  name: 'mean',
  forward: ([x], p) => runReduce('mean', x, p.axes, p.keepdim),
  backward: (g, { inputs: [x], params: p }) => {
    const n = p.axes.reduce((a, i) => a * (x.shape[i] as number), 1);
    const e = unreduce(g, x.shape, p.axes, p.keepdim);
    const out = scale(e, 1 / n);
    e.dispose();
    return [out];
  },
});

// amax semantics: ties share the gradient equally.
const maxOp = defineOp<[Tensor], ReduceParams>({
  name: 'max',
  forward: ([x], p) => runReduce('max', x, p.axes, p.keepdim),
  saveOutput: true,
  backward: (g, { inputs: [x], output, params: p }) => {
    const y = unreduce(output, x.shape, p.axes, p.keepdim);
    const mask = binaryKernel('select(0.0, 1.0, a == b)', x, y);
    const count = runReduce('sum', mask, p.axes, true);
    const gk = p.keepdim ? g.retainHandle() : reshape(g, outShape(x.shape, p.axes, true));
    const share = binaryKernel('a / b', gk, count);
    const se = expand(share, x.shape);
    const dx = binaryKernel('a * b', mask, se);
    for (const t of [y, mask, count, gk, share, se]) t.dispose();
    return [dx];
  },
});


export function sum(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  return sumOp([x], { axes: normAxes(x, axes), keepdim });
}
export function mean(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  return meanOp([x], { axes: normAxes(x, axes), keepdim });
}
export function max(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  return maxOp([x], { axes: normAxes(x, axes), keepdim });
}

/** Sums g down to `shape` (the inverse of broadcasting), used by broadcasting backward rules. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g.retainHandle();
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new ShapeError(`cannot sum ${fmt(g.shape)} down to ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = sum(g, axes, true);
  const r = reshape(s, shape);
  s.dispose();
  return r;
}
