// A study-window layer of a 144-slice brain MRI study: 4 scans × 18 depth tokens × 14 × 14 patches
// = 14,112 patch tokens + CLS = 14,113 rows, 12 heads × 64 (ViT-B). The forward must fit the adapter's
// binding limits and go out as many short dispatches (browsers kill dispatches that run for seconds).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { DEFAULT_WORK_BUDGET } from '../src/kernels/attention.js';
import { TokenLayout } from '../src/nn/hierarchy.js';
import { attention } from '../src/ops/attention.js';
import * as ops from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { getDevice } from './helpers/device.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

describe('attention at 14,113 tokens', () => {
  it('runs the forward of a 144-slice MRI study window in bounded dispatches, spot-checked in float64', async () => {
    const layout = new TokenLayout([{ scans: 4, slices: 18, patches: 196 }], 1);
    const win = layout.windows('study');
    const H = 12;
    const D = 64;
    const T = layout.tokens;
    expect(win.outRows).toBe(14113);
    await scopeAsync(async () => {
      const qkv = ops.randn(dev, [T, 3 * H * D], 11);
      const pre = ops.randn(dev, [1, 3 * H * D], 12);
      await dev.sync();
      const before = dev.stats.dispatches;
      const t0 = performance.now();
      const o = attention({ qkv }, { heads: H, windows: win, prefix: { qkv: pre } });
      const out = (await o.data()) as Float32Array;
      const seconds = (performance.now() - t0) / 1000;
      const dispatches = dev.stats.dispatches - before;
      console.log(`14,113-token study window, 12 heads × 64: forward ${seconds.toFixed(1)} s in ${dispatches} dispatches`);
      // Per dispatch at most DEFAULT_WORK_BUDGET query·key·dim products: 14,113² · 64 · 12 needs ≥ 143.
      expect(dispatches).toBeGreaterThanOrEqual(Math.ceil((14113 * 14113 * D * H) / DEFAULT_WORK_BUDGET));
      expect(out.length).toBe(14113 * H * D);
      // Spot-check rows (first patch row, a middle one, the last one and the CLS row) in float64.
      const x = (await qkv.data()) as Float32Array;
      const p = (await pre.data()) as Float32Array;
      const row = (r: number) => (r < T ? x.subarray(r * 3 * H * D, (r + 1) * 3 * H * D) : p);
      let worst = 0;
      for (const r of [0, 7001, T - 1, T]) {
        for (const h of [0, 5, 11]) {
          const q = row(r).subarray(h * D, (h + 1) * D);
          const s = new Float64Array(T + 1);
          let m = -Infinity;
          for (let j = 0; j <= T; j++) {
            const k = row(j === 0 ? T : j - 1).subarray(H * D + h * D, H * D + (h + 1) * D);
            let acc = 0;
            for (let d = 0; d < D; d++) acc += q[d]! * k[d]!;
            s[j] = acc / Math.sqrt(D);
            m = Math.max(m, s[j]!);
          }
          let sum = 0;
          for (let j = 0; j <= T; j++) sum += (s[j] = Math.exp(s[j]! - m));
          let num = 0;
          let den = 0;
          for (let d = 0; d < D; d++) {
            let acc = 0;
            for (let j = 0; j <= T; j++) acc += s[j]! * row(j === 0 ? T : j - 1)[2 * H * D + h * D + d]!;
            const want = acc / sum;
            num = Math.max(num, Math.abs(out[(r * H + h) * D + d]! - want));
            den = Math.max(den, Math.abs(want));
          }
          worst = Math.max(worst, num / den);
        }
      }
      expect(worst).toBeLessThan(1e-4);
      expect(Number.isFinite(worst)).toBe(true);
    });
  });
});
