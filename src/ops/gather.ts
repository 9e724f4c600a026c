import { assertFloat } from '../dtype.js';
import { DTypeError, ShapeError } from '../errors.js';
import { gatherRows, scatterAddRows } from '../kernels/gather.js';
import { fmt, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { zeros } from './creation.js';
import { defineOp } from './define.js';
import { copyContiguous } from './view.js';

const gatherOp = defineOp<[Tensor, Tensor], undefined>({
  name: 'gather',
  forward: ([table, idx]) => {
    const d = table.shape[1] as number;
    const out = Tensor.empty(table.device, [...idx.shape, d], table.dtype);
    gatherRows(table.device, table, idx, out, idx.size);
    return out;
  },
  backward: (g, { inputs: [table, idx] }) => {
    const gc = g.isContiguous ? g : copyContiguous(g);
    const gt = zeros(table.device, table.shape, table.dtype);
    scatterAddRows(table.device, gc, idx, gt, idx.size);
    if (gc !== g) gc.dispose();
    // Indices are integers: no gradient.
    return [gt, null];
  },
});

/**
 * Embedding lookup: rows of `table` [V, D] picked by integer `indices` of any shape → [...indices, D].
 * Backward scatter-adds the output gradient into a dense [V, D] gradient, summing repeated indices in
 * token order (deterministic, no float atomics).
 *
 * Indices given from the host (an array) are checked here and a ShapeError names the first one outside
 * [0, V). Indices already on the GPU cannot be checked without a readback: an out-of-range index reads
 * a zero row and its gradient is dropped; nothing is ever accessed out of bounds.
 */
export function gather(table: Tensor, indices: Tensor | ArrayLike<number>, shape?: readonly number[]): Tensor {
  assertFloat(table.dtype, 'gather');
  if (table.ndim !== 2) throw new ShapeError(`gather: table must be [V, D], got ${fmt(table.shape)}`);
  const v = table.shape[0] as number;
  if (indices instanceof Tensor) {
    if (indices.dtype !== 'i32') throw new DTypeError(`gather: indices must be i32, got ${indices.dtype}`);
    if (!indices.isContiguous) throw new ShapeError(`gather: indices ${fmt(indices.shape)} must be contiguous`);
    return gatherOp([table, indices], undefined);
  }
  const s = shape ?? [indices.length];
  if (sizeOf(s) !== indices.length) throw new ShapeError(`gather: ${indices.length} indices do not fill shape ${fmt(s)}`);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i] as number;
    if (!Number.isInteger(k) || k < 0 || k >= v) throw new ShapeError(`gather: index ${k} at position ${i} is outside [0, ${v})`);
  }
  const idx = Tensor.from(table.device, indices, s, 'i32');
  const out = gatherOp([table, idx], undefined);
  // The tape holds its own handle; this one is ours.
  idx.dispose();
  return out;
}
