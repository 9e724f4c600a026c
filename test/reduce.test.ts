import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { randomNd, relErr, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

/** Float64 reduction of x ([outer, r, inner] after merging axes) over its middle axis. */
function reduceRef(x: Nd, outer: number, r: number, inner: number, op: 'sum' | 'mean' | 'max'): Float64Array {
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < inner; c++) {
      let acc = op === 'max' ? -Infinity : 0;
      for (let j = 0; j < r; j++) {
        const v = x.data[(o * r + j) * inner + c]!;
        acc = op === 'max' ? Math.max(acc, v) : acc + v;
      }
      out[o * inner + c] = op === 'mean' ? acc / r : acc;
    }
  }
  return out;
}

// Both launch shapes of the reduce kernel at sizes off its workgroup multiples: one thread per output
// column (few columns: the bias gradients of a linear layer, where 4-lane adapters use small
// workgroups to spread them over threads; many columns), and one workgroup per row (long rows).
describe('sum, mean, max over an axis vs float64', () => {
  const cases: [string, number[], number, number, number, number][] = [
    // name, shape, axis, outer, r, inner
    ['bias gradient: [1000, 7] over rows', [1000, 7], 0, 1, 1000, 7],
    ['[129, 33] over rows', [129, 33], 0, 1, 129, 33],
    ['middle axis of [7, 129, 33]', [7, 129, 33], 1, 7, 129, 33],
    ['many columns: [3, 33, 1500] over axis 1', [3, 33, 1500], 1, 3, 33, 1500],
    ['long rows: [33, 129] over the last axis', [33, 129], 1, 33, 129, 1],
    ['short rows: [129, 7] over the last axis', [129, 7], 1, 129, 7, 1],
  ];
  for (const [name, shape, axis, outer, r, inner] of cases) {
    for (const op of ['sum', 'mean', 'max'] as const) {
      it(`${op}: ${name}`, async () => {
        const x = randomNd(shape, 41);
        const t = Tensor.from(dev, x.data, shape);
        const y = op === 'sum' ? ops.sum(t, axis) : op === 'mean' ? ops.mean(t, axis) : ops.max(t, axis);
        expect(y.shape).toEqual(shape.filter((_, i) => i !== axis));
        expect(relErr(await y.data(), reduceRef(x, outer, r, inner, op))).toBeLessThanOrEqual(1e-5);
        t.dispose();
        y.dispose();
      });
    }
  }
});
