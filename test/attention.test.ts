import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { setAttentionUnroll } from '../src/kernels/attention.js';
import * as ops from '../src/ops/index.js';
import { attention, outputParts, WindowTable, type AttentionVariant, type QKV } from '../src/ops/attention.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { attentionRef } from './helpers/attention_ref.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr, type Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

interface Case {
  windows: WindowTable;
  heads: number;
  dim: number;
  packed?: boolean;
  causal?: boolean;
  mask?: number[];
  dtype?: 'f32' | 'f16';
  workBudget?: number;
  scratchBytes?: number;
  seed?: number;
  /** Input range: wider makes the softmax peakier. */
  amp?: number;
  variant?: AttentionVariant;
}

/** [rows, H, D] ×3 → [rows, 3·H·D] as a fused projection would produce. */
function pack(q: Float64Array, k: Float64Array, v: Float64Array, rows: number, hd: number): Float64Array {
  const out = new Float64Array(rows * 3 * hd);
  for (let r = 0; r < rows; r++) {
    out.set(q.subarray(r * hd, (r + 1) * hd), r * 3 * hd);
    out.set(k.subarray(r * hd, (r + 1) * hd), r * 3 * hd + hd);
    out.set(v.subarray(r * hd, (r + 1) * hd), r * 3 * hd + 2 * hd);
  }
  return out;
}
function unpack(x: Float32Array, rows: number, hd: number, part: number): Float32Array {
  const out = new Float32Array(rows * hd);
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * 3 * hd + part * hd, r * 3 * hd + (part + 1) * hd), r * hd);
  return out;
}

async function roundTo(dtype: 'f32' | 'f16', x: Float64Array): Promise<Float64Array> {
  if (dtype === 'f32') return Float64Array.from(Float32Array.from(x));
  const t = Tensor.from(dev, x, [x.length], 'f16');
  const r = Float64Array.from(await t.data());
  t.dispose();
  return r;
}

/** Forward and all gradients against the float64 reference; returns the worst relative errors. */
async function check(c: Case): Promise<{ fwd: number; grad: number }> {
  const { windows: win, heads: H, dim: D } = c;
  const dtype = c.dtype ?? 'f32';
  const rows = win.rows;
  const pre = win.prefixRows;
  const hd = H * D;
  const seed = c.seed ?? 7;
  const amp = c.amp ?? 1;
  const gen = (n: number, s: number) => roundTo(dtype, randomData(n, seed + s, -amp, amp));
  const [q, k, v, pq, pk, pv] = await Promise.all([gen(rows * hd, 1), gen(rows * hd, 2), gen(rows * hd, 3), gen(pre * hd, 4), gen(pre * hd, 5), gen(pre * hd, 6)]);
  const dO = await gen(win.outRows * hd, 9);
  const ref = attentionRef(
    { q, k, v, pq, pk, pv, rows, heads: H, dim: D },
    { starts: win.starts, lens: win.lens, keyLens: win.keyLens, prefix: win.prefix },
    { causal: c.causal ?? false, ...(c.mask ? { mask: c.mask } : {}) },
  );
  const want = ref.grads(dO);
  return scopeAsync(async () => {
    const leaf = (data: Float64Array, shape: number[]) => {
      const t = Tensor.from(dev, data, shape, dtype);
      t.requiresGrad = true;
      return t;
    };
    let x: QKV;
    let prefix: QKV | undefined;
    const leaves: Tensor[] = [];
    if (c.packed) {
      const t = leaf(pack(q, k, v, rows, hd), [rows, 3 * hd]);
      leaves.push(t);
      x = { qkv: t };
      if (pre) {
        const p = leaf(pack(pq, pk, pv, pre, hd), [pre, 3, H, D]);
        leaves.push(p);
        prefix = { qkv: p };
      }
    } else {
      const ts = [q, k, v].map((a) => leaf(a, [rows, H, D]));
      leaves.push(...ts);
      x = { q: ts[0]!, k: ts[1]!, v: ts[2]! };
      if (pre) {
        const ps = [pq, pk, pv].map((a) => leaf(a, [pre, H, D]));
        leaves.push(...ps);
        prefix = { q: ps[0]!, k: ps[1]!, v: ps[2]! };
      }
    }
    const mask = c.mask ? Tensor.from(dev, c.mask, [rows], 'i32') : undefined;
    const out = attention(x, {
      heads: H,
      windows: win,
      ...(prefix ? { prefix } : {}),
      ...(c.causal ? { causal: true } : {}),
      ...(mask ? { keyMask: mask } : {}),
      ...(c.workBudget ? { workBudget: c.workBudget } : {}),
      ...(c.scratchBytes ? { scratchBytes: c.scratchBytes } : {}),
      ...(c.variant ? { variant: c.variant } : {}),
    });
    expect(out.shape).toEqual([win.outRows, H, D]);
    const fwd = relErr(await out.data(), ref.o);
    out.backward(Tensor.from(dev, dO, out.shape, dtype));
    const got: Record<string, Float32Array> = {};
    if (c.packed) {
      const g = (await leaves[0]!.grad!.data()) as Float32Array;
      ['q', 'k', 'v'].forEach((n, i) => (got[n] = unpack(g, rows, hd, i)));
      if (pre) {
        const gp = (await leaves[1]!.grad!.data()) as Float32Array;
        ['pq', 'pk', 'pv'].forEach((n, i) => (got[n] = unpack(gp, pre, hd, i)));
      }
    } else {
      const names = ['q', 'k', 'v', 'pq', 'pk', 'pv'];
      for (let i = 0; i < leaves.length; i++) got[names[i]!] = (await leaves[i]!.grad!.data()) as Float32Array;
    }
    let grad = 0;
    for (const [n, g] of Object.entries(got)) {
      const e = relErr(g, want[n as keyof typeof want]);
      expect(e, `gradient of ${n}`).toBeLessThanOrEqual(dtype === 'f16' ? 1e-2 : 1e-5);
      grad = Math.max(grad, e);
    }
    expect(fwd, 'forward').toBeLessThanOrEqual(dtype === 'f16' ? 1e-2 : 1e-5);
    expect(Object.keys(got).length).toBe(pre ? 6 : 3);
    return { fwd, grad };
  });
}

// Both kernel families: 'auto' is the subgroup family where the adapter has subgroups of one fixed
// size (llvmpipe), 'workgroup' the workgroup-memory family every adapter can run.
for (const variant of ['auto', 'workgroup'] as const) {
  describe(`windowed flash attention vs float64 reference (${variant})`, () => {
    it('one window, separate q/k/v, odd rows (37), D=8', async () => {
      await check({ windows: WindowTable.uniform(1, 37), heads: 2, dim: 8, variant });
    });

    it('slice windows with one prefix token, packed qkv, D=12', async () => {
      // 2 studies × scans 1 and 2 × 3 slices × 7 patches: 9 slice windows of 7 rows.
      await check({ windows: WindowTable.uniform(9, 7, 1), heads: 3, dim: 12, packed: true, variant });
    });

    it('varlen scan windows with two prefix tokens (CLS + register), D=24', async () => {
      await check({ windows: WindowTable.contiguous([21, 35, 14, 70], 2), heads: 2, dim: 24, packed: true, amp: 2, variant });
    });

    it('varlen study windows (150, 67 rows) over several blocks, D=24, separate prefix q/k/v', async () => {
      await check({ windows: WindowTable.contiguous([150, 67], 2), heads: 2, dim: 24, variant });
    });

    // Wide heads: on a cold shader cache llvmpipe needs minutes to compile the unrolled subgroup
    // kernels (Mesa caches them on disk); hence the long timeouts.
    it('head dim 64 (ViT-B/L), one study window of 129 rows', async () => {
      await check({ windows: WindowTable.contiguous([129], 1), heads: 1, dim: 64, packed: true, variant });
    }, 900_000);

    it('head dim 128', async () => {
      await check({ windows: WindowTable.contiguous([45, 20], 1), heads: 1, dim: 128, variant });
    }, 900_000);

    it('head dim 10 (not a multiple of 4)', async () => {
      await check({ windows: WindowTable.contiguous([30, 9], 1), heads: 2, dim: 10, variant });
    }, 300_000);

    it('causal text batch with key padding by lengths (varlen reports), D=24', async () => {
      await check({ windows: WindowTable.contiguous([13, 13, 13], 0, [5, 13, 9]), heads: 2, dim: 24, causal: true, packed: true, variant });
    });

    it('key-padding mask tensor, non-causal, D=8', async () => {
      const mask = Array.from({ length: 40 }, (_, i) => (i % 20 < 14 || i === 33 ? 1 : 0));
      await check({ windows: WindowTable.contiguous([20, 20], 1), heads: 2, dim: 8, mask, variant });
    });

    it('causal, 100 rows over several blocks, D=12', async () => {
      await check({ windows: WindowTable.contiguous([100, 30]), heads: 2, dim: 12, causal: true, variant });
    });

    it('long launches split into many dispatches give the same result', async () => {
      const before = dev.stats.dispatches;
      await check({ windows: WindowTable.contiguous([90, 44], 1), heads: 3, dim: 8, workBudget: 64 * 50 * 8, packed: true, variant });
      // Three heads and several blocks per window, forward + dq + dkdv: far more than 4 unsplit launches.
      expect(dev.stats.dispatches - before).toBeGreaterThan(20);
    });

    // The fused backward (subgroup family): key groups walk several key blocks in order, over
    // several dispatches (block steps split by the work budget) and causal blocks skip queries.
    it('key groups of several key blocks, causal, block steps split over dispatches', async () => {
      await check({ windows: WindowTable.contiguous([260], 1), heads: 8, dim: 8, causal: true, workBudget: 70_000, variant });
    });

    it('backward in one pass per head (scratch cap)', async () => {
      await check({ windows: WindowTable.contiguous([40, 25], 1), heads: 3, dim: 12, packed: true, scratchBytes: 1, variant });
    });

    it('a window of 1,100 rows (subgroup kernels with 16 forward, 8 backward rows per invocation)', async () => {
      await check({ windows: WindowTable.contiguous([1100], 1), heads: 1, dim: 8, variant });
    }, 300_000);

    it('f16 storage with f32 accumulation', async () => {
      if (!dev.caps.f16) return;
      await check({ windows: WindowTable.contiguous([40, 25], 1), heads: 2, dim: 24, dtype: 'f16', packed: true, variant });
    });
  });
}

// SwiftShader's variant of the subgroup kernels (straight-line head-dim loads instead of loops over
// a private array; auto on 4-lane subgroups), forced so llvmpipe runs it too.
describe('windowed flash attention, subgroup kernels with straight-line head-dim code', () => {
  beforeAll(() => setAttentionUnroll(dev, true));
  afterAll(() => setAttentionUnroll(dev, 'auto'));
  // llvmpipe's LLVM takes 10-25 s per straight-line pipeline (SwiftShader well under one): three cases.
  it('varlen study windows over several blocks, D=24, separate prefix q/k/v', async () => {
    await check({ windows: WindowTable.contiguous([150, 67], 2), heads: 2, dim: 24, variant: 'subgroup' });
  });
  it('head dim 10 (not a multiple of 4), key-padding mask', async () => {
    const mask = Array.from({ length: 39 }, (_, i) => (i % 13 < 9 ? 1 : 0));
    await check({ windows: WindowTable.contiguous([30, 9], 1), heads: 2, dim: 10, mask, variant: 'subgroup' });
  }, 300_000);
  it('causal text batch with key padding by lengths, D=24', async () => {
    await check({ windows: WindowTable.contiguous([13, 13, 13], 0, [5, 13, 9]), heads: 2, dim: 24, causal: true, packed: true, variant: 'subgroup' });
  });
});

describe('attention through checkOp (finite differences)', () => {
  it('separate q, k, v in two windows', async () => {
    const win = WindowTable.contiguous([5, 4]);
    const ref = (xs: Nd[]): Nd => {
      const [q, k, v] = xs as [Nd, Nd, Nd];
      const r = attentionRef({ q: q.data, k: k.data, v: v.data, rows: 9, heads: 2, dim: 3 }, { starts: win.starts, lens: win.lens, prefix: 0 });
      return { data: r.o, shape: [9, 2, 3] };
    };
    await checkOp(dev, {
      inputs: [{ shape: [9, 2, 3] }, { shape: [9, 2, 3] }, { shape: [9, 2, 3] }],
      run: ([q, k, v]) => attention({ q: q!, k: k!, v: v! }, { windows: win }),
      ref,
    });
  });
});

describe('attention input layouts', () => {
  it('q/k/v as strided views of one fused projection need no copy', async () => {
    await scopeAsync(async () => {
      const rows = 11;
      const qkv = ops.randn(dev, [rows, 3, 2, 8], 3);
      const q = qkv.view([rows, 2, 8], [48, 8, 1], 0);
      const k = qkv.view([rows, 2, 8], [48, 8, 1], 16);
      const v = qkv.view([rows, 2, 8], [48, 8, 1], 32);
      const a = attention({ q, k, v });
      const b = attention({ qkv });
      expect(relErr(await a.data(), await b.data())).toBe(0);
      const parts = outputParts(b, WindowTable.uniform(1, rows));
      expect(parts.patch.shape).toEqual([rows, 2, 8]);
      expect(parts.prefix.shape).toEqual([0, 2, 8]);
    });
  });

  it('rejects mismatched windows and missing prefix operands', () => {
    const q = ops.zeros(dev, [10, 1, 8]);
    expect(() => attention({ q, k: q, v: q }, { windows: WindowTable.uniform(2, 4) })).toThrow(/cover 8 rows/);
    expect(() => attention({ q, k: q, v: q }, { windows: WindowTable.uniform(2, 5, 1) })).toThrow(/prefix/);
    expect(() => new WindowTable([0, 6], [5, 5])).toThrow(/tile/);
    q.dispose();
  });
});

/**
 * The materialised path of the core ops (what the reference does after reshaping each window into a
 * row): per window [P + L, H, D] rows, softmax(Q Kᵀ · scale) V with matmul and softmax.
 */
function materialized(qkv: Tensor, pre: Tensor, win: WindowTable, H: number, D: number): Tensor {
  const W = win.count;
  const L = win.lens[0]!;
  const P = win.prefix;
  const rows = ops.reshape(qkv, [W, L, 3, H, D]);
  const prow = ops.reshape(pre, [W, P, 3, H, D]);
  const all = ops.concat([prow, rows], 1); // [W, P + L, 3, H, D], prefix first as in the reference
  const part = (i: number) => ops.permute(ops.squeeze(ops.slice(all, 2, i, i + 1), 2), [0, 2, 1, 3]); // [W, H, P+L, D]
  const s = ops.scale(ops.matmul(part(0), ops.transpose(part(1), -2, -1)), 1 / Math.sqrt(D));
  const o = ops.matmul(ops.softmax(s, -1), part(2)); // [W, H, P+L, D]
  const ot = ops.permute(o, [0, 2, 1, 3]); // [W, P+L, H, D]
  // Back to the flash output layout: patch rows, then prefix rows.
  const patch = ops.reshape(ops.slice(ot, 1, P, P + L), [W * L, H, D]);
  const prefix = ops.reshape(ops.slice(ot, 1, 0, P), [W * P, H, D]);
  return ops.concat([patch, prefix], 0);
}

describe('flash vs the materialised composition of the core ops (GPU, f32)', () => {
  // 2 studies × 2 scans × 3 slices × 5 patches, CLS + register.
  const cases: [string, WindowTable][] = [
    ['slice', WindowTable.uniform(12, 5, 2)],
    ['scan', WindowTable.uniform(4, 15, 2)],
    ['study', WindowTable.uniform(2, 30, 2)],
  ];
  for (const [kind, win] of cases) {
    it(`${kind} windows: output and gradients of the fused qkv and prefix`, async () => {
      const H = 2;
      const D = 12;
      await scopeAsync(async () => {
        const results: Float32Array[][] = [];
        for (const impl of ['flash', 'materialized'] as const) {
          const qkv = ops.randn(dev, [win.rows, 3 * H * D], 5);
          const pre = ops.randn(dev, [win.prefixRows, 3 * H * D], 6);
          const g = ops.randn(dev, [win.outRows, H, D], 7);
          qkv.requiresGrad = true;
          pre.requiresGrad = true;
          const o = impl === 'flash' ? attention({ qkv }, { heads: H, windows: win, prefix: { qkv: pre } }) : materialized(qkv, pre, win, H, D);
          o.backward(g);
          results.push([(await o.data()) as Float32Array, (await qkv.grad!.data()) as Float32Array, (await pre.grad!.data()) as Float32Array]);
        }
        const [f, m] = results as [Float32Array[], Float32Array[]];
        expect(relErr(f[0]!, m[0]!), 'output').toBeLessThanOrEqual(1e-5);
        expect(relErr(f[1]!, m[1]!), 'd qkv').toBeLessThanOrEqual(1e-5);
        expect(relErr(f[2]!, m[2]!), 'd prefix qkv').toBeLessThanOrEqual(1e-5);
      });
    });
  }
});
