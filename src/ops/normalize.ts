import { assertFloat } from '../dtype.js';
import { l2NormalizeBackward, l2NormalizeForward } from '../kernels/normalize.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';
import { fromRows, releaseRows, toRows } from './rows.js';

interface NormParams {
  axis: number;
  eps: number;
}

// A fused kernel rather than x / clamp(sqrt(sum(x²))): the sum of squares stays f32 for f16 storage.
const l2NormalizeOp = defineOp<[Tensor], NormParams>({
  name: 'l2Normalize',
  forward: ([x], p) => {
    assertFloat(x.dtype, 'l2Normalize');
    const r = toRows(x, p.axis);
    const y = Tensor.empty(x.device, r.t.shape, x.dtype);
    l2NormalizeForward(x.device, r.t, y, r.rows, r.n, p.eps);
    releaseRows(r);
    return fromRows(y, r.perm);
  },
  backward: (g, { inputs: [x], params: p }) => {
    const xr = toRows(x, p.axis);
    const gr = toRows(g, p.axis);
    const dx = Tensor.empty(x.device, xr.t.shape, x.dtype);
    l2NormalizeBackward(x.device, xr.t, gr.t, dx, xr.rows, xr.n, p.eps);
    releaseRows(xr);
    releaseRows(gr);
    return [fromRows(dx, xr.perm)];
  },
});

/** x / max(‖x‖₂, eps) along `axis` (torch.nn.functional.normalize with p = 2). */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  return l2NormalizeOp([x], { axis, eps });
}
