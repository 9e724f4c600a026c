import { assertFloat } from '../dtype.js';
import { DTypeError, ShapeError } from '../errors.js';
import { layerNormBackward, layerNormForward, layerNormParamGrads, paramGradChunks } from '../kernels/layernorm.js';
import { splitStats } from '../kernels/rows.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';
import { copyContiguous } from './view.js';
import { emptyWithStats } from './rows.js';

/** Per row: shift, delta (mean = shift + delta) and rstd; see shaders/layernorm.wgsl. */
const STATS_PER_ROW = 3;

interface LnParams {
  eps: number;
  hasWeight: boolean;
  hasBias: boolean;
}

function contiguousOrSelf(x: Tensor): Tensor {
  return x.isContiguous ? x : copyContiguous(x);
}

function release(t: Tensor, original: Tensor): void {
  if (t !== original) t.dispose();
}

/** Inputs are [x, weight?, bias?] (only the present ones); params say which. */
const layerNormOp = defineOp<Tensor[], LnParams>({
  name: 'layerNorm',
  // The output's memory also holds each row's statistics (f32), so backward needs the output.
  saveOutput: true,
  forward: (inputs, p) => {
    const x = inputs[0] as Tensor;
    const w = p.hasWeight ? (inputs[1] as Tensor) : null;
    const b = p.hasBias ? (inputs[p.hasWeight ? 2 : 1] as Tensor) : null;
    const n = x.shape[x.ndim - 1] as number;
    const rows = n === 0 ? 0 : x.size / n;
    const xc = contiguousOrSelf(x);
    const wc = w && contiguousOrSelf(w);
    const bc = b && contiguousOrSelf(b);
    const y = emptyWithStats(x.device, x.shape, x.dtype, STATS_PER_ROW * rows);
    const { main, stats } = splitStats(y, STATS_PER_ROW * rows);
    layerNormForward(x.device, xc, wc, bc, main, 0, stats, rows, n, p.eps);
    release(xc, x);
    if (w && wc) release(wc, w);
    if (b && bc) release(bc, b);
    return y;
  },
  backward: (g, { inputs, output, params: p }) => {
    const x = inputs[0] as Tensor;
    const w = p.hasWeight ? (inputs[1] as Tensor) : null;
    const b = p.hasBias ? (inputs[p.hasWeight ? 2 : 1] as Tensor) : null;
    const dev = x.device;
    const n = x.shape[x.ndim - 1] as number;
    const rows = n === 0 ? 0 : x.size / n;
    const { stats } = splitStats(output, STATS_PER_ROW * rows);
    const xc = contiguousOrSelf(x);
    const gc = contiguousOrSelf(g);
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      const wc = w && contiguousOrSelf(w);
      dx = Tensor.empty(dev, x.shape, x.dtype);
      layerNormBackward(dev, xc, wc, gc, stats, dx, rows, n);
      if (w && wc) release(wc, w);
    }
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (w?.requiresGrad || b?.requiresGrad) {
      const { chunks } = paramGradChunks(rows);
      const partial = Tensor.empty(dev, [2 * chunks * n], 'f32');
      dw = Tensor.empty(dev, [n], x.dtype);
      db = Tensor.empty(dev, [n], x.dtype);
      layerNormParamGrads(dev, xc, gc, stats, partial, dw, db, rows, n);
      partial.dispose();
      if (!w?.requiresGrad) {
        dw.dispose();
        dw = null;
      }
      if (!b?.requiresGrad) {
        db.dispose();
        db = null;
      }
    }
    release(xc, x);
    release(gc, g);
    const grads: (Tensor | null)[] = [dx];
    if (w) grads.push(dw);
    if (b) grads.push(db);
    return grads;
  },
});

/**
 * LayerNorm over the last axis: (x − mean) / sqrt(var + eps) · weight + bias, with the biased variance.
 * weight and bias ([n], same dtype as x) are optional. HLIP uses eps 1e-6 (ViT) and 1e-12 (BERT).
 */
export function layerNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  assertFloat(x.dtype, 'layerNorm');
  if (x.ndim === 0) throw new ShapeError('layerNorm needs at least one axis');
  const n = x.shape[x.ndim - 1] as number;
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (!t) continue;
    if (t.ndim !== 1 || t.shape[0] !== n) throw new ShapeError(`layerNorm ${name} has shape ${fmt(t.shape)}, expected [${n}] for input ${fmt(x.shape)}`);
    if (t.dtype !== x.dtype) throw new DTypeError(`layerNorm ${name} is ${t.dtype} but the input is ${x.dtype}`);
  }
  const inputs = [x];
  if (weight) inputs.push(weight);
  if (bias) inputs.push(bias);
  return layerNormOp(inputs, { eps, hasWeight: !!weight, hasBias: !!bias });
}
