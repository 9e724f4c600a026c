import { assertFloat } from '../dtype.js';
import { DTypeError, ShapeError } from '../errors.js';
import { crossEntropyBackward, crossEntropyForward, crossEntropyStatsLength, type Reduction } from '../kernels/cross_entropy.js';
import { splitStats } from '../kernels/rows.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';
import { emptyWithStats } from './rows.js';
import { copyContiguous } from './view.js';

export type { Reduction };

export interface CrossEntropyOptions {
  /** Default 'mean' (over the rows whose target is not ignored). */
  reduction?: Reduction;
  /** Rows with this target contribute no loss and no gradient. Default −100, as in PyTorch. */
  ignoreIndex?: number;
}

interface CeParams {
  reduction: Reduction;
  ignoreIndex: number;
}

function contiguousOrSelf(x: Tensor): Tensor {
  return x.isContiguous ? x : copyContiguous(x);
}

const crossEntropyOp = defineOp<[Tensor, Tensor], CeParams>({
  name: 'crossEntropy',
  // The output's memory also holds each row's logsumexp (and the counted rows), reused by backward.
  saveOutput: true,
  forward: ([x, t], p) => {
    const [rows, c] = x.shape as [number, number];
    const xc = contiguousOrSelf(x);
    const tc = contiguousOrSelf(t);
    const statsLen = crossEntropyStatsLength(rows, p.reduction);
    const out = emptyWithStats(x.device, p.reduction === 'none' ? [rows] : [], x.dtype, statsLen);
    const { main, stats } = splitStats(out, statsLen);
    crossEntropyForward(x.device, xc, tc, main, 0, stats, rows, c, p.reduction, p.ignoreIndex);
    if (xc !== x) xc.dispose();
    if (tc !== t) tc.dispose();
    return out;
  },
  backward: (g, { inputs: [x, t], output, params: p }) => {
    const [rows, c] = x.shape as [number, number];
    const { stats } = splitStats(output, crossEntropyStatsLength(rows, p.reduction));
    const xc = contiguousOrSelf(x);
    const tc = contiguousOrSelf(t);
    const gc = contiguousOrSelf(g);
    const dx = Tensor.empty(x.device, x.shape, x.dtype);
    crossEntropyBackward(x.device, xc, tc, stats, gc, dx, rows, c, p.reduction, p.ignoreIndex);
    for (const [a, b] of [[xc, x], [tc, t], [gc, g]] as const) if (a !== b) a.dispose();
    return [dx, null];
  },
});

/**
 * Cross-entropy of logits [N, C] against class indices (torch.nn.functional.cross_entropy without
 * weights or label smoothing): loss_i = logsumexp(x_i) − x_i[target_i].
 *
 * `targets` is an i32 tensor [N] or host integers. Host targets are checked here: anything other than
 * ignoreIndex outside [0, C) throws. Targets already on the GPU are not read back; an out-of-range one
 * is never used as an index (the kernel clamps the read) and makes its row's loss and gradient NaN,
 * so a 'mean'/'sum' loss turns NaN.
 */
export function crossEntropy(logits: Tensor, targets: Tensor | ArrayLike<number>, opts: CrossEntropyOptions = {}): Tensor {
  assertFloat(logits.dtype, 'crossEntropy');
  if (logits.ndim !== 2) throw new ShapeError(`crossEntropy expects logits [N, C], got ${fmt(logits.shape)}`);
  const [rows, c] = logits.shape as [number, number];
  if (c === 0) throw new ShapeError('crossEntropy needs at least one class');
  const reduction = opts.reduction ?? 'mean';
  const ignoreIndex = opts.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex)) throw new ShapeError(`crossEntropy ignoreIndex must be an integer, got ${ignoreIndex}`);
  let t: Tensor;
  if (targets instanceof Tensor) {
    if (targets.dtype !== 'i32') throw new DTypeError(`crossEntropy targets must be i32, got ${targets.dtype}`);
    if (targets.ndim !== 1 || targets.shape[0] !== rows) throw new ShapeError(`crossEntropy targets have shape ${fmt(targets.shape)}, expected [${rows}] for logits ${fmt(logits.shape)}`);
    t = targets;
  } else {
    if (targets.length !== rows) throw new ShapeError(`crossEntropy got ${targets.length} targets for ${rows} rows`);
    for (let i = 0; i < rows; i++) {
      const v = targets[i] as number;
      if (v !== ignoreIndex && !(Number.isInteger(v) && v >= 0 && v < c)) {
        throw new ShapeError(`crossEntropy target ${v} at row ${i} is outside [0, ${c}) and is not ignoreIndex (${ignoreIndex})`);
      }
    }
    t = Tensor.from(logits.device, targets, [rows], 'i32');
  }
  const out = crossEntropyOp([logits, t], { reduction, ignoreIndex });
  if (t !== targets) t.dispose();
  return out;
}
