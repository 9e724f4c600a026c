// The training step: accum-freq / accum-batch semantics against explicit compositions, a short run
// that learns, flat GPU memory, and resume determinism through an in-memory checkpoint.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import type { CustomTextCLIP } from '../src/models/clip.js';
import { tokenBatch } from '../src/models/text-transformer.js';
import type { HlipVisualEncoder } from '../src/models/visual.js';
import { concat, l2Normalize } from '../src/ops/index.js';
import { decodeCheckpoint, encodeCheckpoint } from '../src/train/checkpoint.js';
import { clipLoss, dualClipLoss, SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE, sigLipLoss } from '../src/train/losses.js';
import { cosineLr } from '../src/train/schedule.js';
import { Trainer, type StepMetrics, type TrainBatch, type TrainerOptions } from '../src/train/trainer.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { reinit, snapshot, tinyBatch, tinyClip } from './helpers/tiny_clip.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

async function grads(m: CustomTextCLIP): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, p] of m.namedParameters()) if (p.grad) out.set(n, Float32Array.from((await p.grad.data()) as Float32Array));
  return out;
}

function clearGrads(m: CustomTextCLIP): void {
  for (const p of m.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
}

const relErr = (a: Float32Array, b: Float32Array, k = 1): number => {
  let e = 0;
  let mx = 0;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs((a[i] as number) - k * (b[i] as number)));
    mx = Math.max(mx, Math.abs(k * (b[i] as number)));
  }
  return e / Math.max(mx, 1e-30);
};

function imageOf(b: TrainBatch): Tensor {
  const [B, S, D, H, W] = b.shape;
  return Tensor.from(dev, b.images, [B, S, 1, D, H, W]);
}

/** Normalised features of one batch with the draws the trainer's context gives micro-batch `micro`. */
function explicitFeatures(m: CustomTextCLIP, tr: Trainer, b: TrainBatch, micro: number, patchDropout = 0): [Tensor, Tensor] {
  const ctx = tr.forwardContext(0, micro);
  const o = (m.visual as HlipVisualEncoder).forward(imageOf(b), { tokens: false, random: ctx.random, seed: ctx.seed, patchDropout });
  const B = b.shape[0];
  return [l2Normalize(o.features, -1), m.encodeText(tokenBatch(b.ids, [B, b.ids.length / B]), { normalize: true })];
}

describe('Trainer', () => {
  for (const loss of ['clip', 'siglip'] as const) {
    it(`accum_freq=2 over 2×B: loss and gradients are the full-batch loss's (logit scale ×2), ${loss}`, async () => {
      const m = tinyClip(dev, loss === 'siglip' ? { initLogitScale: SIGLIP_INIT_LOGIT_SCALE, initLogitBias: SIGLIP_INIT_LOGIT_BIAS } : {});
      // Patch dropout 0.5 (clip case): the cached and the gradient pass must drop the same tokens.
      const pd = loss === 'clip' ? 0.5 : 0;
      const tr = new Trainer(m, { loss, accumFreq: 2, seed: 5, patchDropout: pd });
      const b0 = tinyBatch(0);
      const b1 = tinyBatch(1, 4, 2, 5); // a shorter text length too
      await scopeAsync(async () => {
        const r = tr.accumulateGradients([b0, b1]);
        const lossA = await r.loss.item();
        const gA = await grads(m);
        clearGrads(m);
        // The reference's definition: one loss over the concatenation of both micro-batches' features.
        m.train(true);
        const [i0, t0] = explicitFeatures(m, tr, b0, 0, pd);
        const [i1, t1] = explicitFeatures(m, tr, b1, 1, pd);
        const I = concat([i0, i1], 0);
        const T = concat([t0, t1], 0);
        const ref = loss === 'clip' ? clipLoss(I, T, m.logitScaleParam) : sigLipLoss(I, T, m.logitScaleParam, m.logitBiasParam as Tensor);
        ref.loss.backward();
        const lossR = await ref.loss.item();
        const gR = await grads(m);
        clearGrads(m);
        expect(Math.abs(lossA - lossR)).toBeLessThan(1e-5 * Math.abs(lossR));
        expect([...gA.keys()].sort()).toEqual([...gR.keys()].sort());
        for (const [n, g] of gR) {
          // open_clip back-propagates the full loss once per micro-batch: the logit scale (and bias),
          // which every pass reaches, collect accum_freq times its gradient.
          const k = n === 'logit_scale' || n === 'logit_bias' ? 2 : 1;
          expect(relErr(gA.get(n) as Float32Array, g, k), n).toBeLessThan(1e-5);
        }
      });
      tr.dispose();
      m.dispose();
    });
  }

  it('dual loss (2026): accum_freq=2 equals the full-batch dual loss; both log-scales clamped', async () => {
    const m = tinyClip(dev, { vision: { reg_tokens: 1, global_pool_dinotxt: true, max_num_scans: 0 }, initLogitBias: Math.log(1 / 0.07) });
    const tr = new Trainer(m, { loss: 'dual', accumFreq: 2, seed: 2 });
    const withReport = (k: number, T2: number): TrainBatch => {
      const b = tinyBatch(k);
      return { ...b, reportIds: tinyBatch(k + 100, 4, 2, T2).ids };
    };
    const b0 = withReport(0, 5);
    const b1 = withReport(1, 7);
    await scopeAsync(async () => {
      const lossA = await tr.accumulateGradients([b0, b1]).loss.item();
      const gA = await grads(m);
      clearGrads(m);
      m.train(true);
      const parts = [b0, b1].map((b, j) => {
        const [img, txt] = explicitFeatures(m, tr, b, j);
        const rep = m.encodeText(tokenBatch(b.reportIds as Int32Array, [4, (b.reportIds as Int32Array).length / 4]), { normalize: true });
        return [img, txt, rep] as const;
      });
      const cat = (k: 0 | 1 | 2) => concat(parts.map((p) => p[k]), 0);
      const ref = dualClipLoss(cat(0), cat(1), cat(2), m.logitScaleParam, m.logitBiasParam);
      expect(ref.report).not.toBeNull();
      ref.loss.backward();
      const lossR = await ref.loss.item();
      const gR = await grads(m);
      clearGrads(m);
      expect(Math.abs(lossA - lossR)).toBeLessThan(1e-5 * Math.abs(lossR));
      for (const [n, g] of gR) expect(relErr(gA.get(n) as Float32Array, g, n.startsWith('logit_') ? 2 : 1), n).toBeLessThan(1e-5);
    });
    // After a step the report log-scale is clamped to [0, ln 100] like the sentence one.
    const lb = m.logitBiasParam as Tensor;
    lb.device.write(lb.buffer, lb.offset * 4, Float32Array.of(7));
    await tr.step([b0, b1]);
    expect(await lb.item()).toBeCloseTo(Math.log(100), 5);
    tr.dispose();
    m.dispose();
  });

  it('accum_batch=2: one forward over the joined batch', async () => {
    const m = tinyClip(dev);
    const tr = new Trainer(m, { accumBatch: 2, seed: 9 });
    const b0 = tinyBatch(3, 2);
    const b1 = tinyBatch(4, 3, 2, 5);
    await scopeAsync(async () => {
      const got = await tr.accumulateGradients([b0, b1]).loss.item();
      clearGrads(m);
      const joined: TrainBatch = {
        images: Float32Array.from([...b0.images, ...b1.images]),
        shape: [5, 2, 4, 8, 8],
        // Rows of length 6; b1's rows of 5 padded with 0.
        ids: Int32Array.from([...b0.ids, ...Array.from({ length: 3 }, (_, r) => [...b1.ids.subarray(r * 5, r * 5 + 5), 0]).flat()]),
      };
      m.train(true);
      const [I, T] = explicitFeatures(m, tr, joined, 0);
      const want = await clipLoss(I, T, m.logitScaleParam).loss.item();
      expect(Math.abs(got - want)).toBeLessThan(1e-6 * Math.abs(want));
    });
    clearGrads(m);
    expect(() => tr.accumulateGradients([b0])).toThrow(/2 loader batches/);
    tr.dispose();
    m.dispose();
  });

  it('learns a fixed batch in 10 steps; metrics reported; live GPU bytes flat', async () => {
    const m = tinyClip(dev, { vision: { drop_path_rate: 0, max_num_scans: 1 } });
    reinit(m, 3);
    const metrics: StepMetrics[] = [];
    const tr = new Trainer(m, { lr: 1e-3, weightDecay: 0.1, gradClipNorm: 1, seed: 1, onMetrics: (x) => metrics.push(x) });
    const batch = [tinyBatch(7, 6, 1)];
    const live: number[] = [];
    for (let s = 0; s < 10; s++) {
      await tr.step(batch);
      live.push(dev.pool.liveBytes);
    }
    expect(metrics.map((x) => x.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const losses = metrics.map((x) => x.loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    // Chance level is ln 6 ≈ 1.79; the run starts above it and ends well below.
    expect(losses[0]).toBeGreaterThan(Math.log(6));
    expect(losses[9]).toBeLessThan(0.5 * (losses[0] as number));
    expect(losses[9]).toBeLessThan(Math.log(6) - 0.5);
    for (const x of metrics) {
      expect(x.lr).toBe(1e-3);
      expect(x.samples).toBe(6);
      expect(x.gradNorm).toBeGreaterThan(0);
      expect(x.logitScale).toBeGreaterThan(1);
      expect(x.logitScale).toBeLessThanOrEqual(100 * (1 + 1e-6));
    }
    expect(metrics[0]!.logitScale).toBeCloseTo(1 / 0.07, 3);
    expect(live[9]).toBe(live[2]);
    expect(tr.globalStep).toBe(10);
    tr.dispose();
    m.dispose();
  });

  it('resume: 6 steps straight = 3 steps, checkpoint, fresh model and trainer, restore, 3 steps', async () => {
    // Random scan positions, drop path, patch dropout, accum-freq, clipping, warm-up + cosine, metrics every 3 steps.
    const opts = (onMetrics: (x: StepMetrics) => void): TrainerOptions => ({
      accumFreq: 2, gradClipNorm: 0.5, seed: 42, schedule: cosineLr(2e-3, 2, 6), metricsEvery: 3, patchDropout: 0.5, onMetrics,
    });
    const batchesOf = (s: number) => [tinyBatch(10 + 2 * s), tinyBatch(11 + 2 * s)];
    const a = tinyClip(dev);
    const init = await snapshot(a);
    const straight: number[] = [];
    const ta = new Trainer(a, opts((x) => straight.push(x.loss)));
    for (let s = 0; s < 6; s++) await ta.step(batchesOf(s));
    await ta.flushMetrics();
    ta.dispose();
    a.dispose();

    const resumed: number[] = [];
    const b = tinyClip(dev);
    b.loadStateDict(init);
    const tb = new Trainer(b, opts((x) => resumed.push(x.loss)));
    for (let s = 0; s < 3; s++) await tb.step(batchesOf(s));
    const ckpt = await tb.checkpoint({ epoch: 1, loader: { position: 3, order: [2, 0, 1] }, config: { model: 'tiny' } });
    tb.dispose();
    b.dispose();
    const bytes = encodeCheckpoint(ckpt);
    const back = await decodeCheckpoint(bytes, 'resume.safetensors');
    expect(back.step).toBe(3);
    expect(back.loader).toEqual({ position: 3, order: [2, 0, 1] });

    const c = tinyClip(dev);
    const tc = new Trainer(c, opts((x) => resumed.push(x.loss)));
    tc.restore(back, 'resume.safetensors');
    expect(tc.globalStep).toBe(3);
    for (let s = 3; s < 6; s++) await tc.step(batchesOf(s));
    await tc.flushMetrics();
    expect(resumed.length).toBe(6);
    for (let i = 0; i < 6; i++) expect(Math.abs((resumed[i] as number) - (straight[i] as number)), `step ${i}`).toBeLessThanOrEqual(1e-6);
    tc.dispose();
    c.dispose();
  });
});
