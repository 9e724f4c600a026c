// HLIP visual encoder: config registry, position tables, scan-order sampling, drop path (small models).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { nativeGrid, prefixTokens, visualConfig, visualConfigNames, type HlipVisualConfig } from '../src/models/configs.js';
import { linearInterpMatrix, resampleSpatial, sequentialRows } from '../src/models/posemb.js';
import { HlipVisualEncoder } from '../src/models/visual.js';
import { randn } from '../src/ops/creation.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { relErr } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

const tiny = (over: Partial<HlipVisualConfig> = {}): HlipVisualConfig => ({
  ...visualConfig({
    img_size: [8, 16, 16], patch_size: [2, 8, 8], embed_dim: 24, depth: 3, num_heads: 2, max_num_scans: 4,
    slice_attn_indexes: [0], scan_attn_indexes: [1], study_attn_indexes: [2],
  }),
  ...over,
});

describe('visual configs', () => {
  it('every reference name builds a config matching the spec tables', () => {
    const names = visualConfigNames();
    for (const n of ['vit_base_singlescan_h2_token2744', 'vit_base_multiscan_h2_token588', 'vit_base_multiscan_h2_token1176', 'vit_base_multiscan_h3_token1176',
      'clip_vit_base_slice_scan_dualdinotxt2744', 'clip_vit_base_scan_study_dualdinotxt1568', 'clip_vit_base_slice_scan_study_dualdinotxt1568',
      'clip_vit_large_scan_study_dualdinotxt1568', 'clip_vit_large_slice_scan_study_dualdinotxt1568',
      'ablate_seqposemb_clip_vit_base_multiscan_h2_dualdinotxt1568', 'ablate_seqposemb_clip_vit_large_multiscan_h3_dualdinotxt1568']) {
      expect(names).toContain(n);
    }
    for (const n of names) {
      const c = visualConfig(n);
      expect(c.levels.length, n).toBe(c.depth);
      expect(c.embedDim % c.numHeads, n).toBe(0);
    }
    const ct = visualConfig('vit_base_singlescan_h2_token2744');
    expect(nativeGrid(ct)).toEqual([14, 14, 14]);
    expect(ct.levels).toEqual(['slice', 'slice', 'study', 'slice', 'slice', 'study', 'slice', 'slice', 'study', 'slice', 'slice', 'study']);
    expect(ct.maxNumScans).toBe(1);
    expect(ct.outDim).toBe(512);
    const h3 = visualConfig('vit_base_multiscan_h3_token1176');
    expect(h3.levels.slice(0, 3)).toEqual(['slice', 'scan', 'study']);
    expect(h3.maxNumScans).toBe(40);
    const large = visualConfig('clip_vit_large_slice_scan_study_dualdinotxt1568');
    expect([large.depth, large.embedDim, large.numHeads, prefixTokens(large), large.pool, large.outDim]).toEqual([24, 1024, 16, 2, 'dinotxt', 768]);
    expect(large.levels.filter((l) => l === 'study').length).toBe(4);
    expect(large.levels[4]).toBe('scan');
    expect(nativeGrid(visualConfig('vit_base_scan_study_dualdinotxt1568'))).toEqual([8, 14, 14]);
    expect(() => visualConfig('vit_tiny_nope')).toThrow(/unknown HLIP visual config/);
    expect(() => visualConfig({ img_size: [8, 16, 16], patch_size: [2, 8, 8], embed_dim: 24, depth: 2, num_heads: 5 })).toThrow(/divisible/);
  });
});

describe('position tables', () => {
  it('linear interpolation weights follow align_corners=False', () => {
    // 2 → 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (neighbour clamped).
    expect([...linearInterpMatrix(4, 2)]).toEqual([1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1]);
    // 4 → 2: sources 0.5 and 2.5.
    expect([...linearInterpMatrix(2, 4)]).toEqual([0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5]);
  });

  it('trilinear resampling equals the separable reference on the host', async () => {
    await scopeAsync(async () => {
      const [d0, h0, w0, C] = [3, 4, 2, 5];
      const host = Float32Array.from({ length: d0 * h0 * w0 * C }, (_, i) => Math.sin(i * 0.37));
      const t = Tensor.from(dev, host, [1, d0, h0, w0, C]);
      const [d, h, w] = [5, 2, 3];
      const got = await resampleSpatial(t, [d, h, w]).data();
      const Md = linearInterpMatrix(d, d0), Mh = linearInterpMatrix(h, h0), Mw = linearInterpMatrix(w, w0);
      const ref = new Float64Array(d * h * w * C);
      for (let a = 0; a < d; a++) for (let b = 0; b < h; b++) for (let c = 0; c < w; c++) for (let k = 0; k < C; k++) {
        let s = 0;
        for (let i = 0; i < d0; i++) for (let j = 0; j < h0; j++) for (let l = 0; l < w0; l++) {
          s += Md[a * d0 + i]! * Mh[b * h0 + j]! * Mw[c * w0 + l]! * host[((i * h0 + j) * w0 + l) * C + k]!;
        }
        ref[((a * h + b) * w + c) * C + k] = s;
      }
      expect(relErr(got as Float32Array, ref)).toBeLessThan(1e-6);
    });
  });

  it('scan-order rows: prefix, picked positions, interpolation beyond the table', async () => {
    await scopeAsync(async () => {
      const M = 4, C = 3;
      const host = Float32Array.from({ length: M * C }, (_, i) => i);
      const t = Tensor.from(dev, host, [1, M, C]);
      expect([...(await sequentialRows(t, 2).data())]).toEqual([0, 1, 2, 3, 4, 5]);
      expect([...(await sequentialRows(t, 2, [3, 1]).data())]).toEqual([9, 10, 11, 3, 4, 5]);
      const up = (await sequentialRows(t, 8).data()) as Float32Array;
      // Row r of a linear ramp resampled 4 → 8: source index clamp((r + 0.5)/2 − 0.5, 0, 3).
      for (let r = 0; r < 8; r++) {
        const src = Math.min(3, Math.max(0, (r + 0.5) / 2 - 0.5));
        expect(up[r * C]).toBeCloseTo(src * C, 5);
      }
    });
  });
});

describe('HlipVisualEncoder (tiny, random weights)', () => {
  it('shapes, token and dinotxt pooling, JSON construction', async () => {
    await scopeAsync(async () => {
      const enc = new HlipVisualEncoder(dev, tiny({ outDim: 7 }));
      const dual = new HlipVisualEncoder(dev, tiny({ regTokens: 1, pool: 'dinotxt', maxNumScans: 0, outDim: 5 }));
      try {
        const x = randn(dev, [2, 1, 1, 8, 16, 24], 3);
        const o = enc.forward(x);
        expect(o.tokens!.shape).toEqual([2, 1 + 4 * 2 * 3, 24]);
        expect(o.pooled.shape).toEqual([2, 24]);
        expect(o.features.shape).toEqual([2, 7]);
        const tok = (await o.tokens!.data()) as Float32Array;
        const pooled = (await o.pooled.data()) as Float32Array;
        expect([...pooled.subarray(0, 24)]).toEqual([...tok.subarray(0, 24)]);
        const d = dual.forward(x);
        expect(d.pooled.shape).toEqual([2, 2, 48]);
        expect(d.features.shape).toEqual([2, 2, 5]);
        const dt = (await d.tokens!.data()) as Float32Array;
        const dp = (await d.pooled.data()) as Float32Array;
        const L = 24;
        // Row 1 of study 0 = [register token | mean of the patch tokens].
        for (let k = 0; k < 24; k += 5) {
          expect(dp[48 + k]).toBeCloseTo(dt[24 + k]!, 5);
          let m = 0;
          for (let j = 0; j < L; j++) m += dt[(2 + j) * 24 + k]!;
          expect(dp[48 + 24 + k]).toBeCloseTo(m / L, 4);
        }
        expect([...dual.stateDict().keys()]).toContain('trunk.reg_token');
        expect([...dual.stateDict().keys()]).not.toContain('trunk.sequential_posemb');
        expect([...enc.stateDict().keys()]).toContain('head.proj.weight');
      } finally {
        enc.dispose();
        dual.dispose();
      }
    });
  });

  it('scan positions: rows 0..N-1 in eval; random distinct rows in training or with the batch-size quirk', async () => {
    await scopeAsync(async () => {
      const enc = new HlipVisualEncoder(dev, tiny());
      try {
        const x = randn(dev, [2, 3, 1, 8, 16, 16], 5);
        const ff = async (o: { tokens?: Tensor }) => (await o.tokens!.data()) as Float32Array;
        const evalOut = await ff(enc.forward(x));
        const explicit = await ff(enc.forward(x, { scanPositions: [0, 1, 2] }));
        expect(relErr(evalOut, explicit)).toBe(0);
        // randperm(4)[:3] from a fixed stream: Fisher-Yates with u = 0.9, 0.1, 0.5 picks 3, 1, 0.
        const seq = [0.9, 0.1, 0.5];
        const quirk = await ff(enc.forward(x, { batchSizeQuirk: true, random: () => seq.shift() ?? 0 }));
        const picked = await ff(enc.forward(x, { scanPositions: [3, 1, 0] }));
        expect(relErr(quirk, picked)).toBe(0);
        expect(relErr(quirk, evalOut)).toBeGreaterThan(1e-3);
        // B = 1 with the quirk is deterministic (reference test-time path).
        const one = randn(dev, [1, 3, 1, 8, 16, 16], 6);
        const a = await ff(enc.forward(one, { batchSizeQuirk: true, random: () => 0.9 }));
        const b = await ff(enc.forward(one));
        expect(relErr(a, b)).toBe(0);
        // More scans than table rows: only allowed at test time.
        enc.train();
        expect(() => enc.forward(randn(dev, [1, 5, 1, 8, 16, 16], 7))).toThrow(/exceed/);
        enc.eval();
        expect(enc.forward(randn(dev, [1, 5, 1, 8, 16, 16], 7)).tokens!.shape).toEqual([1, 1 + 5 * 16, 24]);
      } finally {
        enc.dispose();
      }
    });
  });

  it('drop path: dropped blocks are identities; merges still average the prefix copies', async () => {
    await scopeAsync(async () => {
      const enc = new HlipVisualEncoder(dev, tiny({ dropPathRate: 0.5, maxNumScans: 1 }));
      try {
        enc.train();
        const x = randn(dev, [1, 1, 1, 8, 16, 16], 8);
        // Block 0 has rate 0; block 1 (scan level, 1 window) 0.25; block 2 0.5. Drop everything: blocks 1-2 are identities.
        const o = enc.forward(x, { blocks: true, intermediates: true, random: () => 0 });
        const b0 = (await o.blocks![0]!.data()) as Float32Array;
        const b2 = (await o.blocks![2]!.data()) as Float32Array;
        // Block 0 output [4 slices, 1 + 2·2, C] vs block 2 output [1, 1 + 16, C]: same patch tokens.
        const C = 24;
        for (let s = 0; s < 4; s++) for (let j = 0; j < 4; j++) for (let k = 0; k < C; k++) {
          expect(b2[(1 + s * 4 + j) * C + k]).toBe(b0[(s * 5 + 1 + j) * C + k]);
        }
        // Class token after the slice→scan merge is the mean of the 4 slice copies.
        for (let k = 0; k < C; k++) {
          const m = (b0[0 * 5 * C + k]! + b0[1 * 5 * C + k]! + b0[2 * 5 * C + k]! + b0[3 * 5 * C + k]!) / 4;
          expect(b2[k]).toBeCloseTo(m, 5);
        }
      } finally {
        enc.dispose();
      }
    });
  });
});
