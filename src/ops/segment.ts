import { assertFloat } from '../dtype.js';
import { ShapeError } from '../errors.js';
import { segmentKernel } from '../kernels/segment.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';
import { copyContiguous } from './view.js';

interface Segments {
  counts: readonly number[];
  /** (src, count) per output row of repeatRows. */
  expand: Uint32Array;
  /** (start, count) per output row of segmentMean. */
  reduce: Uint32Array;
  total: number;
}

function segments(counts: readonly number[]): Segments {
  const expand: number[] = [];
  const reduce: number[] = [];
  let start = 0;
  counts.forEach((c, s) => {
    if (!Number.isInteger(c) || c < 1) throw new ShapeError(`segment ${s} has count ${c}; every segment needs at least one row`);
    reduce.push(start, c);
    for (let k = 0; k < c; k++) expand.push(s, c);
    start += c;
  });
  return { counts, expand: Uint32Array.from(expand), reduce: Uint32Array.from(reduce), total: start };
}

/** Runs a segment kernel on x seen as [rows, F] into a new [outRows, …rest] tensor. */
function launch(x: Tensor, mode: 'expand' | 'reduce', pairs: Uint32Array, mean: boolean): Tensor {
  assertFloat(x.dtype, mode === 'expand' ? 'repeatRows' : 'segmentMean');
  const src = x.isContiguous ? x : copyContiguous(x);
  const rows = pairs.length / 2;
  const rowElems = x.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = Tensor.empty(x.device, [rows, ...x.shape.slice(1)], x.dtype);
  segmentKernel(x.device, mode, src, out, rowElems, pairs, mean);
  if (src !== x) src.dispose();
  return out;
}

const repeatOp = defineOp<[Tensor], Segments>({
  name: 'repeatRows',
  forward: ([x], s) => launch(x, 'expand', s.expand, false),
  // Every copy's gradient flows back to its source row.
  backward: (g, { params: s }) => [launch(g, 'reduce', s.reduce, false)],
});

const meanOp = defineOp<[Tensor], Segments>({
  name: 'segmentMean',
  forward: ([x], s) => launch(x, 'reduce', s.reduce, true),
  backward: (g, { params: s }) => [launch(g, 'expand', s.expand, true)],
});

/** Row s of x repeated counts[s] times, in order (torch.repeat_interleave along axis 0). */
export function repeatRows(x: Tensor, counts: readonly number[]): Tensor {
  if (x.ndim < 1 || x.shape[0] !== counts.length) throw new ShapeError(`repeatRows: ${fmt(x.shape)} needs ${counts.length} rows (one per count)`);
  return repeatOp([x], segments(counts));
}

/** Mean of each run of counts[s] consecutive rows of x, in order. */
export function segmentMean(x: Tensor, counts: readonly number[]): Tensor {
  const s = segments(counts);
  if (x.ndim < 1 || x.shape[0] !== s.total) throw new ShapeError(`segmentMean: ${fmt(x.shape)} needs ${s.total} rows (the sum of the counts)`);
  return meanOp([x], s);
}
