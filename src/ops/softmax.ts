import { assertFloat } from '../dtype.js';
import { softmaxBackward, softmaxForward } from '../kernels/softmax.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';
import { fromRows, releaseRows, toRows } from './rows.js';

interface SoftmaxParams {
  axis: number;
}

// Both ops run on the last axis of contiguous rows; another axis is moved last (one copy in, one out).
function makeOp(name: string, log: boolean) {
  return defineOp<[Tensor], SoftmaxParams>({
    name,
    saveOutput: true,
    forward: ([x], p) => {
      assertFloat(x.dtype, name);
      const r = toRows(x, p.axis);
      const y = Tensor.empty(x.device, r.t.shape, x.dtype);
      softmaxForward(x.device, r.t, y, r.rows, r.n, log);
      releaseRows(r);
      return fromRows(y, r.perm);
    },
    backward: (g, { output, params: p }) => {
      const gr = toRows(g, p.axis);
      const yr = toRows(output, p.axis);
      const dx = Tensor.empty(g.device, gr.t.shape, output.dtype);
      softmaxBackward(g.device, yr.t, gr.t, dx, gr.rows, gr.n, log);
      releaseRows(gr);
      releaseRows(yr);
      return [fromRows(dx, gr.perm)];
    },
  });
}

const softmaxOp = makeOp('softmax', false);
const logSoftmaxOp = makeOp('logSoftmax', true);

/** exp(x − max) / Σ exp(x − max) along `axis` (numerically stable). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp([x], { axis });
}

/** x − max − log Σ exp(x − max) along `axis`. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return logSoftmaxOp([x], { axis });
}
