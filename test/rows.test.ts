import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { cpuAdapter, rowVariant, setRowVariant, type RowVariant } from '../src/kernels/rows.js';
import * as ops from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr } from './helpers/ref.js';

// Both row-kernel families (one workgroup per row; one invocation per row), pinned in turn, on odd
// shapes. Gradients are checked against closed-form float64 gradients (finite differences over
// 1000-row inputs would take minutes); the per-op test files check the same formulas against
// finite differences on smaller shapes.

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});
afterAll(() => setRowVariant(dev, 'auto'));

const ROWS = [1, 7, 1000];
const WIDTHS = [1, 7, 72, 129, 1000];
const TOL = 1e-5;

type Row = (x: Float64Array, r: Float64Array) => { y: Float64Array; dx: Float64Array };

/** Applies a per-row float64 forward+backward to [rows, n] data. */
function byRows(x: Float64Array, r: Float64Array, n: number, f: Row): { y: Float64Array; dx: Float64Array } {
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += n) {
    const res = f(x.subarray(o, o + n), r.subarray(o, o + n));
    y.set(res.y, o);
    dx.set(res.dx, o);
  }
  return { y, dx };
}

const softmaxRow: Row = (x, r) => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  const y = e.map((v) => v / s);
  const t = y.reduce((a, v, j) => a + v * r[j]!, 0);
  return { y, dx: y.map((v, j) => v * (r[j]! - t)) };
};

const logSoftmaxRow: Row = (x, r) => {
  const p = softmaxRow(x, r).y;
  const rs = r.reduce((a, b) => a + b, 0);
  return { y: p.map((v) => Math.log(v)), dx: r.map((v, j) => v - p[j]! * rs) };
};

const l2Row =
  (eps: number): Row =>
  (x, r) => {
    const norm = Math.sqrt(x.reduce((a, v) => a + v * v, 0));
    const d = Math.max(norm, eps);
    const k = norm >= eps ? x.reduce((a, v, j) => a + v * r[j]!, 0) / d ** 3 : 0;
    return { y: x.map((v) => v / d), dx: x.map((v, j) => r[j]! / d - v * k) };
  };

/** Runs op forward and backward with upstream gradient r; returns y and dx (and extra grads). */
async function runOp(shape: number[], xs: Float64Array, r: Float64Array, op: (x: Tensor) => Tensor, extra: Tensor[] = []): Promise<{ y: Float32Array; grads: Float32Array[] }> {
  return scopeAsync(async () => {
    const x = Tensor.from(dev, xs, shape);
    x.requiresGrad = true;
    const y = op(x);
    y.backward(Tensor.from(dev, r, y.shape));
    const out = { y: (await y.data()) as Float32Array, grads: [] as Float32Array[] };
    for (const t of [x, ...extra]) {
      out.grads.push((await t.grad!.data()) as Float32Array);
      t.grad!.dispose();
      t.grad = null;
    }
    x.dispose();
    return out;
  });
}

for (const variant of ['serial', 'workgroup'] as const satisfies readonly RowVariant[]) {
  describe(`row kernels, ${variant} family`, () => {
    beforeAll(() => setRowVariant(dev, variant));

    for (const rows of ROWS) {
      for (const n of WIDTHS) {
        const shape = [rows, n];
        const seed = rows * 7919 + n;
        it(`layerNorm [${rows}, ${n}] weight+bias (dx, dweight, dbias)`, async () => {
          const eps = 1e-6;
          const xs = randomData(rows * n, seed, -2, 2);
          const ws = randomData(n, seed + 1, 0.5, 1.5);
          const bs = randomData(n, seed + 2, -1, 1);
          const r = randomData(rows * n, seed + 3);
          const w = Tensor.from(dev, ws, [n]);
          const b = Tensor.from(dev, bs, [n]);
          w.requiresGrad = b.requiresGrad = true;
          const got = await runOp(shape, xs, r, (x) => ops.layerNorm(x, w, b, eps), [w, b]);
          const dw = new Float64Array(n);
          const db = new Float64Array(n);
          const ref = byRows(xs, r, n, (x, rr) => {
            const mean = x.reduce((a, v) => a + v, 0) / n;
            const rstd = 1 / Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / n + eps);
            const xh = x.map((v) => (v - mean) * rstd);
            const gy = rr.map((v, j) => v * ws[j]!);
            const m1 = gy.reduce((a, v) => a + v, 0) / n;
            const m2 = gy.reduce((a, v, j) => a + v * xh[j]!, 0) / n;
            xh.forEach((v, j) => {
              dw[j]! += rr[j]! * v;
              db[j]! += rr[j]!;
            });
            return { y: xh.map((v, j) => v * ws[j]! + bs[j]!), dx: xh.map((v, j) => rstd * (gy[j]! - m1 - v * m2)) };
          });
          expect(relErr(got.y, ref.y), 'forward').toBeLessThanOrEqual(TOL);
          expect(relErr(got.grads[0]!, ref.dx), 'dx').toBeLessThanOrEqual(TOL);
          expect(relErr(got.grads[1]!, dw), 'dweight').toBeLessThanOrEqual(TOL);
          expect(relErr(got.grads[2]!, db), 'dbias').toBeLessThanOrEqual(TOL);
          for (const t of [w, b]) t.dispose();
        });
        for (const [name, op, line] of [
          ['softmax', ops.softmax, softmaxRow],
          ['logSoftmax', ops.logSoftmax, logSoftmaxRow],
          ['l2Normalize', (x: Tensor) => ops.l2Normalize(x), l2Row(1e-12)],
        ] as const) {
          it(`${name} [${rows}, ${n}]`, async () => {
            const xs = randomData(rows * n, seed, -4, 4);
            const r = randomData(rows * n, seed + 3);
            const got = await runOp(shape, xs, r, op);
            const ref = byRows(xs, r, n, line);
            expect(relErr(got.y, ref.y), 'forward').toBeLessThanOrEqual(TOL);
            if (name === 'l2Normalize') {
              // dx = r/d − x·(r·x)/d³ cancels exactly for n = 1 (the reference is 0), so the error is
              // measured against the size of the cancelling terms, |r|/d.
              let scale = 0;
              let err = 0;
              for (let o = 0; o < rows * n; o += n) {
                const d = Math.sqrt(xs.subarray(o, o + n).reduce((a, v) => a + v * v, 0));
                for (let i = o; i < o + n; i++) {
                  scale = Math.max(scale, Math.abs(r[i]!) / d);
                  err = Math.max(err, Math.abs(got.grads[0]![i]! - ref.dx[i]!));
                }
              }
              expect(err / scale, 'dx').toBeLessThanOrEqual(TOL);
            } else {
              expect(relErr(got.grads[0]!, ref.dx), 'dx').toBeLessThanOrEqual(TOL);
            }
          });
        }
        it(`crossEntropy mean [${rows}, ${n}] with ignored rows`, async () => {
          const xs = randomData(rows * n, seed, -4, 4);
          // Every 5th row (from the 2nd) is ignored; a single row is kept so the mean is finite.
          const tg = Array.from(randomData(rows, seed + 5, 0, n), (v, i) => (i % 5 === 1 ? -100 : Math.min(n - 1, Math.floor(v))));
          const g = 0.75;
          const got = await runOp(shape, xs, Float64Array.of(g), (x) => ops.crossEntropy(x, tg));
          let loss = 0;
          let count = 0;
          const dx = new Float64Array(rows * n);
          for (let i = 0; i < rows; i++) {
            if (tg[i] === -100) continue;
            count++;
            const p = softmaxRow(xs.subarray(i * n, (i + 1) * n), new Float64Array(n)).y;
            loss -= Math.log(p[tg[i]!]!);
            p.forEach((v, j) => (dx[i * n + j] = v - (j === tg[i] ? 1 : 0)));
          }
          expect(relErr(got.y, [loss / count]), 'loss').toBeLessThanOrEqual(TOL);
          expect(relErr(got.grads[0]!, dx.map((v) => (v * g) / count)), 'dx').toBeLessThanOrEqual(TOL);
        });
      }
    }

    it('crossEntropy none [7, 129]: per-row losses and gradients', async () => {
      const [rows, n] = [7, 129];
      const xs = randomData(rows * n, 3, -4, 4);
      const r = randomData(rows, 4);
      const tg = Array.from(randomData(rows, 5, 0, n), (v) => Math.floor(v));
      const got = await runOp([rows, n], xs, r, (x) => ops.crossEntropy(x, tg, { reduction: 'none' }));
      const loss = new Float64Array(rows);
      const dx = new Float64Array(rows * n);
      for (let i = 0; i < rows; i++) {
        const p = softmaxRow(xs.subarray(i * n, (i + 1) * n), new Float64Array(n)).y;
        loss[i] = -Math.log(p[tg[i]!]!);
        p.forEach((v, j) => (dx[i * n + j] = (v - (j === tg[i] ? 1 : 0)) * r[i]!));
      }
      expect(relErr(got.y, loss)).toBeLessThanOrEqual(TOL);
      expect(relErr(got.grads[0]!, dx)).toBeLessThanOrEqual(TOL);
    });

    it('layerNorm keeps small variance on rows with a large mean (shifted two-pass statistics)', async () => {
      const values = Float32Array.from(randomData(1000 * 72, 77, 99.5, 100.5));
      await checkOp(dev, {
        inputs: [{ shape: [1000, 72], values, grad: false }],
        noBackward: true,
        run: ([x]) => ops.layerNorm(x!, null, null, 1e-6),
        ref: ([x]) => {
          const y = byRows(x!.data, new Float64Array(x!.data.length), 72, (v) => {
            const mean = v.reduce((a, b) => a + b, 0) / 72;
            const rstd = 1 / Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / 72 + 1e-6);
            return { y: v.map((b) => (b - mean) * rstd), dx: v };
          }).y;
          return { data: y, shape: [1000, 72] };
        },
      });
    });

    // (A row of -inf only is left out: WGSL does not pin down inf − inf, and SwiftShader differs.)
    it('softmax masks -inf entries', async () => {
      const x = Tensor.from(dev, [0, -Infinity, 1, -Infinity, -3.4e38, 2], [2, 3]);
      const y = ops.softmax(x);
      const ly = ops.logSoftmax(x);
      const e = Math.E;
      const v = await y.data();
      const lv = await ly.data();
      expect(relErr(v, [1 / (1 + e), 0, e / (1 + e), 0, 0, 1])).toBeLessThanOrEqual(1e-6);
      expect([lv[1], lv[3]]).toEqual([-Infinity, -Infinity]);
      expect(relErr([lv[0]!, lv[2]!, lv[5]!], [-Math.log(1 + e), 1 - Math.log(1 + e), 0])).toBeLessThanOrEqual(1e-6);
      for (const t of [x, y, ly]) t.dispose();
    });

    it('crossEntropy: out-of-range device targets give NaN rows, all-ignored mean is NaN with zero gradient', async () => {
      const x = Tensor.from(dev, randomData(3 * 4, 1), [3, 4]);
      x.requiresGrad = true;
      const t = Tensor.from(dev, [0, 1_000_000, 2], [3], 'i32');
      const l = ops.crossEntropy(x, t, { reduction: 'none' });
      const v = await l.data();
      expect(Number.isFinite(v[0]!) && Number.isNaN(v[1]!) && Number.isFinite(v[2]!)).toBe(true);
      l.backward(ops.ones(dev, [3]));
      const g = await x.grad!.data();
      expect(g.slice(0, 4).every(Number.isFinite) && g.slice(4, 8).every(Number.isNaN) && g.slice(8).every(Number.isFinite)).toBe(true);
      x.grad!.dispose();
      x.grad = null;
      const m = ops.crossEntropy(x, [-100, -100, -100]);
      expect(Number.isNaN(await m.item())).toBe(true);
      m.backward();
      expect(Array.from(await x.grad!.data())).toEqual(new Array(12).fill(0));
      for (const a of [x, t, l, m]) a.dispose();
    });

    it('f16 storage (layerNorm, softmax, l2Normalize, crossEntropy)', async () => {
      if (!dev.caps.f16) return;
      const tg = Array.from(randomData(1000, 5, 0, 72), (v) => Math.floor(v));
      const common = { dtype: 'f16' as const, inputs: [{ shape: [1000, 72], lo: -3, hi: 3 }], noBackward: true };
      const f16Rows = (f: Row) => ([x]: { data: Float64Array; shape: number[] }[]) => ({ data: byRows(x!.data, new Float64Array(x!.data.length), 72, f).y, shape: [1000, 72] });
      await checkOp(dev, { ...common, run: ([x]) => ops.softmax(x!), ref: f16Rows(softmaxRow) });
      await checkOp(dev, { ...common, run: ([x]) => ops.l2Normalize(x!), ref: f16Rows(l2Row(1e-12)) });
      await checkOp(dev, {
        ...common,
        run: ([x]) => ops.layerNorm(x!, null, null, 1e-6),
        ref: f16Rows((v) => {
          const mean = v.reduce((a, b) => a + b, 0) / 72;
          const rstd = 1 / Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / 72 + 1e-6);
          return { y: v.map((b) => (b - mean) * rstd), dx: v };
        }),
      });
      await checkOp(dev, {
        ...common,
        run: ([x]) => ops.crossEntropy(x!, tg, { reduction: 'none' }),
        ref: ([x]) => ({ data: Float64Array.from(tg, (t, i) => -Math.log(softmaxRow(x!.data.subarray(i * 72, i * 72 + 72), new Float64Array(72)).y[t]!)), shape: [1000] }),
      });
    });
  });
}

describe('row kernel family choice', () => {
  it('follows the adapter and the shape unless pinned', () => {
    setRowVariant(dev, 'auto');
    if (cpuAdapter(dev)) {
      // CPU adapters: one invocation per row, except a few very long rows.
      expect(rowVariant(dev, 4608, 72)).toBe('serial');
      expect(rowVariant(dev, 576, 768)).toBe('serial');
      expect(rowVariant(dev, 1, 5000)).toBe('workgroup');
    } else {
      expect(rowVariant(dev, 4608, 16)).toBe('serial');
      expect(rowVariant(dev, 4608, 768)).toBe('workgroup');
    }
    setRowVariant(dev, 'workgroup');
    expect(rowVariant(dev, 4608, 1)).toBe('workgroup');
    setRowVariant(dev, 'serial');
    expect(rowVariant(dev, 1, 1 << 20)).toBe('serial');
    setRowVariant(dev, 'auto');
  });
});
