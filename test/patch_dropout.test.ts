// Patch dropout on the HLIP visual encoder (hlip-spec §2.9): selection, kept counts per initial row,
// hierarchical windows over the kept tokens, equivalence with a forward on the gathered patches, gradients.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { visualConfig, type HlipVisualConfig } from '../src/models/configs.js';
import { keptGrid, patchDropIndices, patchKeepCount } from '../src/models/patch-dropout.js';
import { HlipVisualEncoder } from '../src/models/visual.js';
import { mul, sum } from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { randNormal } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { randomData, relErr } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

/** Tiny encoder: patch 2×8×8, C 12, one block per level in `levels`, no scan-order table, no drop path. */
const tiny = (levels: ('slice' | 'scan' | 'study')[], over: Partial<HlipVisualConfig> = {}): HlipVisualConfig => ({
  ...visualConfig({ img_size: [4, 16, 16], patch_size: [2, 8, 8], embed_dim: 12, depth: levels.length, num_heads: 2, mlp_ratio: 2, max_num_scans: 1, levels }),
  ...over,
});

type Grid = [number, number, number, number, number]; // B, N, d, h, w

/** Patch (b, n, z, y, x) of image a → patch (b', n', z', y', x') of image b (patch 2×8×8, one channel). */
function copyPatch(src: Float32Array, sg: Grid, st: number, dst: Float32Array, dg: Grid, dt: number): void {
  const dec = (g: Grid, t: number) => {
    const [, N, d, h, w] = g;
    const x = t % w, y = Math.floor(t / w) % h, z = Math.floor(t / (w * h)) % d, n = Math.floor(t / (w * h * d)) % N, b = Math.floor(t / (w * h * d * N));
    return { b, n, z, y, x };
  };
  const at = (g: Grid, p: { b: number; n: number; z: number; y: number; x: number }, i: number, j: number, k: number) => {
    const [, N, d, h, w] = g;
    const D = d * 2, H = h * 8, W = w * 8;
    return (((p.b * N + p.n) * D + p.z * 2 + i) * H + p.y * 8 + j) * W + p.x * 8 + k;
  };
  const a = dec(sg, st), b = dec(dg, dt);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 8; j++) for (let k = 0; k < 8; k++) dst[at(dg, b, i, j, k)] = src[at(sg, a, i, j, k)] as number;
}

describe('patch dropout selection', () => {
  it('keeps max(1, floor(L·(1−p))) distinct tokens of each row, chosen by argsort of Philox normals', () => {
    expect(patchKeepCount(196, 0.5)).toBe(98);
    expect(patchKeepCount(1176, 0.5)).toBe(588);
    expect(patchKeepCount(3, 0.9)).toBe(1);
    expect(patchKeepCount(10, 0.35)).toBe(6);
    expect(() => patchKeepCount(4, 1)).toThrow(/\[0, 1\)/);
    const rows = 5, L = 12, p = 0.5, seed = 1234;
    const idx = patchDropIndices(rows, L, p, seed);
    expect(idx.length).toBe(rows * 6);
    const z = randNormal(rows * L, seed);
    for (let r = 0; r < rows; r++) {
      const row = [...idx.subarray(r * 6, r * 6 + 6)];
      expect(new Set(row).size).toBe(6);
      for (const i of row) expect(Math.floor(i / L)).toBe(r);
      // Independent reference: the 6 smallest normals of the row, smallest first.
      const ref = Array.from({ length: L }, (_, j) => j).sort((a, b) => z[r * L + a]! - z[r * L + b]!).slice(0, 6).map((j) => r * L + j);
      expect(row).toEqual(ref);
    }
    expect([...patchDropIndices(rows, L, p, seed)]).toEqual([...idx]);
    expect([...patchDropIndices(rows, L, p, seed + 1)]).not.toEqual([...idx]);
    // Pinned values: Node and Chromium draw the same selection.
    expect([...patchDropIndices(2, 8, 0.5, 7)]).toEqual(PINNED);
  });

  it('kept grid: every later window is built over the kept tokens', () => {
    const g = { B: 2, N: 3, d: 4, h: 5, w: 6 };
    expect(keptGrid(g, ['slice', 'scan', 'study'], 15)).toEqual({ B: 2, N: 3, d: 4, h: 1, w: 15 });
    expect(keptGrid(g, ['scan', 'study'], 60)).toEqual({ B: 2, N: 3, d: 1, h: 1, w: 60 });
    expect(keptGrid(g, ['scan', 'slice', 'study'], 60)).toEqual({ B: 2, N: 3, d: 4, h: 1, w: 15 });
    expect(keptGrid(g, ['study', 'scan'], 60)).toEqual({ B: 2, N: 3, d: 1, h: 1, w: 20 });
    expect(() => keptGrid(g, ['scan', 'slice'], 61)).toThrow(/multiple of 4/);
  });
});

const PINNED = [7, 5, 6, 3, 12, 14, 11, 10];

describe('patch dropout in the visual encoder', () => {
  it('is the identity in eval mode and at p = 0', async () => {
    await scopeAsync(async () => {
      const enc = new HlipVisualEncoder(dev, tiny(['slice', 'scan', 'study'], { outDim: 8 }));
      try {
        const x = Tensor.from(dev, Float32Array.from(randomData(2 * 16 * 16 * 4, 1)), [1, 2, 1, 4, 16, 16]);
        const base = (await enc.forward(x).tokens!.data()) as Float32Array;
        const evalDrop = (await enc.forward(x, { patchDropout: 0.5, seed: 3 }).tokens!.data()) as Float32Array;
        expect(relErr(evalDrop, base)).toBe(0);
        const trainNoDrop = (await enc.forward(x, { train: true, patchDropout: 0, seed: 3 }).tokens!.data()) as Float32Array;
        expect(relErr(trainNoDrop, base)).toBe(0);
        const o = enc.forward(x, { train: true, patchDropout: 0.5, seed: 3 });
        expect(o.tokens!.shape).toEqual([1, 1 + 2 * 2 * 2, 12]);
      } finally {
        enc.dispose();
      }
    });
  });

  it('keeps the same count in every initial row and builds slice/scan/study windows over the kept tokens', async () => {
    await scopeAsync(async () => {
      const enc = new HlipVisualEncoder(dev, tiny(['slice', 'scan', 'study', 'slice'], { regTokens: 1, pool: 'dinotxt', outDim: 8 }));
      try {
        // B 2, N 2, grid d 2 × h 2 × w 2: slice rows of 4 tokens keep 2 at p = 0.5.
        const x = Tensor.from(dev, Float32Array.from(randomData(2 * 2 * 4 * 16 * 16, 2)), [2, 2, 1, 4, 16, 16]);
        const o = enc.forward(x, { train: true, patchDropout: 0.5, seed: 11, blocks: true, intermediates: true });
        const shapes = o.blocks!.map((b) => b.shape);
        expect(shapes).toEqual([[8, 2 + 2, 12], [4, 2 + 4, 12], [2, 2 + 8, 12], [8, 2 + 2, 12]]);
        expect(o.posEmbed!.shape).toEqual([8, 4, 12]);
        expect(o.tokens!.shape).toEqual([2, 2 + 8, 12]);
        expect(o.pooled.shape).toEqual([2, 2, 24]);
        // Rows of the block-0 input are the gathered patch embeddings (+ position) of each slice.
        const pe = (await o.patchEmbed!.data()) as Float32Array; // [2, 2, 2, 2, 2, 12]: no posemb on it
        const pos = (await o.posEmbed!.data()) as Float32Array;
        const spatial = (await [...enc.trunk.namedBuffers()].find(([n]) => n === 'spatial_posemb')![1].data()) as Float32Array;
        const idx = patchDropIndices(8, 4, 0.5, 11);
        for (let r = 0; r < 8; r++) for (let k = 0; k < 2; k++) {
          const t = idx[r * 2 + k]!;
          const s = t % 8; // position inside the scan (z, y, x)
          for (let c = 0; c < 12; c += 5) expect(pos[(r * 4 + 2 + k) * 12 + c]).toBeCloseTo(pe[t * 12 + c]! + spatial[s * 12 + c]!, 5);
        }
        // Different seeds pick different tokens; the same seed the same ones.
        const a = (await enc.forward(x, { train: true, patchDropout: 0.5, seed: 11 }).features.data()) as Float32Array;
        const b = (await enc.forward(x, { train: true, patchDropout: 0.5, seed: 11 }).features.data()) as Float32Array;
        const c = (await enc.forward(x, { train: true, patchDropout: 0.5, seed: 12 }).features.data()) as Float32Array;
        expect(relErr(a, b)).toBe(0);
        expect(relErr(c, a)).toBeGreaterThan(1e-3);
        // The module flag works as well as the per-call option.
        enc.train();
        const d = (await enc.forward(x, { patchDropout: 0.5, seed: 11 }).features.data()) as Float32Array;
        expect(relErr(d, a)).toBe(0);
        enc.eval();
        // A rate whose kept count cannot be cut into the later finer windows is refused.
        const scanFirst = new HlipVisualEncoder(dev, tiny(['scan', 'slice']));
        try {
          // Scan rows of 8 tokens keep 3 at p = 0.55, not a multiple of the 2 slices.
          expect(() => scanFirst.forward(x, { train: true, patchDropout: 0.55, seed: 1 })).toThrow(/multiple of 2/);
        } finally {
          scanFirst.dispose();
        }
      } finally {
        enc.dispose();
      }
    });
  });

  // With a zero position table and no scan-order table, the kept tokens carry nothing but their patch,
  // so a forward with dropout must equal an eval forward of an image made of the kept patches.
  for (const [levels, B, N, keptImage] of [
    [['slice', 'scan', 'study'], 2, 1, (K: number, d: number): [number, number, number] => [d, 1, K]],
    [['scan', 'study'], 1, 2, (K: number): [number, number, number] => [1, 1, K]],
    [['scan', 'slice', 'study'], 1, 2, (K: number, d: number): [number, number, number] => [d, 1, K / d]],
  ] as const) {
    it(`equals a forward on the gathered patches (${levels.join(' → ')})`, async () => {
      await scopeAsync(async () => {
        const cfg = tiny([...levels], { outDim: 8 });
        const enc = new HlipVisualEncoder(dev, cfg);
        try {
          enc.trunk.loadStateDict(new Map([['spatial_posemb', { shape: [1, 2, 2, 2, 12], data: new Float32Array(8 * 12) }]]), { strict: false });
          const g: Grid = [B, N, 2, 2, 2];
          const host = Float32Array.from(randomData(B * N * 4 * 16 * 16, 3));
          const x = Tensor.from(dev, host, [B, N, 1, 4, 16, 16]);
          const p = 0.5, seed = 21;
          const first = levels[0];
          const rows = first === 'slice' ? B * N * 2 : B * N;
          const L = first === 'slice' ? 4 : 8;
          const K = patchKeepCount(L, p);
          const [d2, h2, w2] = keptImage(K, 2);
          const g2: Grid = [B, N, d2, h2, w2];
          const img = new Float32Array(B * N * d2 * 2 * h2 * 8 * w2 * 8);
          const idx = patchDropIndices(rows, L, p, seed);
          idx.forEach((t, i) => copyPatch(host, g, t, img, g2, i));
          const drop = enc.forward(x, { train: true, patchDropout: p, seed });
          const ref = enc.forward(Tensor.from(dev, img, [B, N, 1, d2 * 2, h2 * 8, w2 * 8]));
          expect(drop.tokens!.shape).toEqual(ref.tokens!.shape);
          expect(relErr((await drop.tokens!.data()) as Float32Array, (await ref.tokens!.data()) as Float32Array)).toBeLessThan(1e-5);
          expect(relErr((await drop.features.data()) as Float32Array, (await ref.features.data()) as Float32Array)).toBeLessThan(1e-5);
        } finally {
          enc.dispose();
        }
      });
    });
  }

  it('gradients reach the kept patches only', async () => {
    await scopeAsync(async () => {
      const enc = new HlipVisualEncoder(dev, tiny(['slice', 'scan', 'study'], { outDim: 8 }));
      try {
        const B = 1, N = 2;
        const host = Float32Array.from(randomData(B * N * 4 * 16 * 16, 4));
        const x = Tensor.from(dev, host, [B, N, 1, 4, 16, 16]);
        x.requiresGrad = true;
        const o = enc.forward(x, { train: true, patchDropout: 0.5, seed: 5, tokens: false });
        const w = Tensor.from(dev, Float32Array.from(randomData(8, 5)), [1, 8]);
        sum(mul(o.features, w)).backward();
        const gx = (await x.grad!.data()) as Float32Array;
        const kept = new Set(patchDropIndices(B * N * 2, 4, 0.5, 5));
        // Patch t of the (b, n, z, y, x) grid: |grad| summed over its 2×8×8 voxels.
        for (let t = 0; t < B * N * 8; t++) {
          const probe = new Float32Array(gx.length);
          copyPatch(gx, [B, N, 2, 2, 2], t, probe, [B, N, 2, 2, 2], t);
          const mass = probe.reduce((a, v) => a + Math.abs(v), 0);
          if (kept.has(t)) expect(mass, `patch ${t}`).toBeGreaterThan(1e-6);
          else expect(mass, `patch ${t}`).toBe(0);
        }
        const gw = enc.trunk.patch_embed.proj.parameters()[0]!;
        expect(gw.grad).toBeTruthy();
        x.grad?.dispose();
        for (const q of enc.parameters()) {
          q.grad?.dispose();
          q.grad = null;
        }
      } finally {
        enc.dispose();
      }
    });
  });
});
