import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { mapNd } from './helpers/ref.js';
import type { Tensor } from '../src/tensor/tensor.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

function erf(x: number): number {
  // float64 erf (Abramowitz–Stegun 7.1.28 is too coarse): series / continued fraction.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t;
    let term = t;
    for (let n = 1; n < 200; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

const unary: [string, (t: Tensor) => Tensor, (x: number) => number, number?, number?][] = [
  ['neg', ops.neg, (x) => -x],
  ['exp', ops.exp, Math.exp],
  ['log', ops.log, Math.log, 0.1, 3],
  ['sqrt', ops.sqrt, Math.sqrt, 0.1, 3],
  ['rsqrt', ops.rsqrt, (x) => 1 / Math.sqrt(x), 0.2, 3],
  ['tanh', ops.tanh, Math.tanh, -3, 3],
  ['sigmoid', ops.sigmoid, sigmoid, -6, 6],
  ['logSigmoid', ops.logSigmoid, (x) => Math.log(sigmoid(x)), -6, 6],
  ['gelu', ops.gelu, (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), -4, 4],
  ['pow 3', (t) => ops.pow(t, 3), (x) => x ** 3, -2, 2],
  ['pow 0.5', (t) => ops.pow(t, 0.5), (x) => Math.sqrt(x), 0.1, 2],
  ['pow -1.5', (t) => ops.pow(t, -1.5), (x) => x ** -1.5, 0.5, 2],
  ['clamp', (t) => ops.clamp(t, -0.5, 0.3), (x) => Math.min(0.3, Math.max(-0.5, x))],
  ['scale', (t) => ops.scale(t, 2.5, -1), (x) => 2.5 * x - 1],
];

describe('unary ops', () => {
  for (const [name, f, ref, lo, hi] of unary) {
    for (const shape of [[1], [7], [33, 5], [1000]]) {
      it(`${name} ${JSON.stringify(shape)}`, async () => {
        // clamp's kinks make finite differences ambiguous at the edges; random data avoids them.
        await checkOp(dev, { inputs: [{ shape, lo: lo ?? -2, hi: hi ?? 2 }], run: ([x]) => f(x!), ref: ([x]) => mapNd([x!], ref) });
      });
    }
  }
  it('gelu f16 storage', async () => {
    if (!dev.caps.f16) return;
    await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [129], lo: -3, hi: 3 }], run: ([x]) => ops.gelu(x!), ref: ([x]) => mapNd([x!], (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))) });
  });
});

const binary: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
  ['add', ops.add, (a, b) => a + b],
  ['sub', ops.sub, (a, b) => a - b],
  ['mul', ops.mul, (a, b) => a * b],
  ['div', ops.div, (a, b) => a / b],
];

describe('binary ops with broadcasting', () => {
  const shapes: [number[], number[]][] = [
    [[7], [7]],
    [[33, 5], [5]],
    [[4, 1, 6], [3, 1]],
    [[1], [129]],
    [[2, 3, 1, 5], [2, 1, 4, 1]],
  ];
  for (const [name, f, ref] of binary) {
    for (const [sa, sb] of shapes) {
      it(`${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, async () => {
        await checkOp(dev, {
          inputs: [{ shape: sa }, { shape: sb, lo: name === 'div' ? 0.5 : -1, hi: name === 'div' ? 2 : 1 }],
          run: ([a, b]) => f(a!, b!),
          ref: ([a, b]) => mapNd([a!, b!], ref),
        });
      });
    }
  }
  it('f16 add', async () => {
    if (!dev.caps.f16) return;
    await checkOp(dev, { dtype: 'f16', inputs: [{ shape: [33, 7] }, { shape: [7] }], run: ([a, b]) => ops.add(a!, b!), ref: ([a, b]) => mapNd([a!, b!], (x, y) => x + y) });
  });
  it('rejects mixed dtypes', async () => {
    const a = ops.zeros(dev, [3]);
    const b = ops.zeros(dev, [3], 'i32');
    expect(() => ops.add(a, b)).toThrow(/i32/);
    a.dispose();
    b.dispose();
  });
});
