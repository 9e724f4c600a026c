// `npm run bench -- train-options [--json] [--steps n] [--tokens t]`: the demo model (src/train/demo-config.ts)
// trained on fixed random batches of the demo's shapes (16 studies × 3 scans × 16×32×32, reports of t
// tokens) with precision fp32 / amp and gradient checkpointing off / on. Reports the median step time
// (each step awaited, so the GPU work is included) and the peak of live GPU memory (pool accounting):
// what stays between steps (parameters, AdamW moments, metric buffers) plus the most a step adds on top
// (activations kept for backward, gradients, temporaries).
import { buildOpenClip } from '../src/models/openclip.js';
import { createNodeDevice } from '../src/node/gpu.js';
import { randUniform } from '../src/tensor/rng.js';
import { DEMO } from '../src/train/demo-config.js';
import { initFanIn } from '../src/train/init.js';
import { Trainer, type Precision, type StepMetrics, type TrainBatch } from '../src/train/trainer.js';
import { registerBench } from './registry.js';

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};
const MiB = (b: number) => +(b / 2 ** 20).toFixed(2);

registerBench('train-options', '[--steps n] [--tokens t]: demo model step time and peak GPU memory, fp32/amp × grad checkpointing off/on', async (ctx) => {
  const opt = (k: string, d: number) => {
    const i = ctx.args.indexOf(`--${k}`);
    return i >= 0 ? Number(ctx.args[i + 1]) : d;
  };
  const steps = opt('steps', 6);
  const T = opt('tokens', 64);
  const dev = await createNodeDevice();
  const [D, H, W] = DEMO.shape;
  const B = DEMO.batch;
  const S = DEMO.scans;
  const batches: TrainBatch[] = [0, 1].map((k) => ({
    images: randUniform(B * S * D * H * W, 100 + k, { low: -1, high: 1 }),
    shape: [B, S, D, H, W],
    ids: Int32Array.from(randUniform(B * T, 200 + k, { low: 1000, high: 30000 }), Math.floor),
  }));
  const all: { precision: Precision; gradCheckpointing: boolean }[] = [
    { precision: 'fp32', gradCheckpointing: false },
    { precision: 'amp', gradCheckpointing: false },
    { precision: 'fp32', gradCheckpointing: true },
    { precision: 'amp', gradCheckpointing: true },
  ];
  // Without shader-f16 an amp trainer falls back to fp32: those rows would repeat the fp32 ones.
  const configs = dev.caps.f16 ? all : all.filter((c) => c.precision === 'fp32');
  const note = (l: string) => console.log(ctx.json ? `# ${l}` : l);
  note(`adapter: ${dev.adapter.description || dev.adapter.device}; shader-f16 ${dev.caps.f16}${dev.caps.f16 ? '' : ' (amp rows left out)'}; subgroups ${dev.caps.subgroupMinSize}–${dev.caps.subgroupMaxSize}`);
  // Built and warmed up one after the other (pipelines compiled, AdamW moments allocated), then stepped
  // round-robin so that load changes on a shared machine hit every configuration alike.
  const runs = configs.map((c) => {
    const before = dev.pool.liveBytes;
    const built = buildOpenClip(dev, DEMO.model as never);
    initFanIn(built.model, 1);
    const r = { c, built, persistent: dev.pool.liveBytes - before, ms: [] as number[], above: [] as number[], loss: NaN, skipped: 0, tr: null as unknown as Trainer };
    const onMetrics = (m: StepMetrics) => {
      r.loss = m.loss;
      if (m.skipped) r.skipped++;
    };
    r.tr = new Trainer(built.model, { lr: DEMO.lr, weightDecay: 0.2, beta2: 0.98, eps: 1e-6, seed: 1, ...c, onWarning: (m) => console.error(m), onMetrics });
    return r;
  });
  const step = async (r: (typeof runs)[number], s: number, timed: boolean) => {
    const base = dev.pool.liveBytes;
    dev.pool.resetPeak();
    const t0 = performance.now();
    await r.tr.step([batches[s % 2]!]);
    const dt = performance.now() - t0;
    r.above.push(dev.pool.peakBytes - base);
    if (timed) r.ms.push(dt);
  };
  for (const r of runs) {
    const before = dev.pool.liveBytes;
    for (let s = 0; s < 2; s++) await step(r, s, false);
    // The model's tensors (counted at build) plus what its trainer keeps between steps (AdamW moments…).
    r.persistent += dev.pool.liveBytes - before;
  }
  for (let s = 2; s < steps + 2; s++) for (const r of runs) await step(r, s, true);
  for (const r of runs) {
    const stepPeak = Math.max(...r.above);
    const row = { bench: 'train-options', precision: r.tr.precision, grad_checkpointing: r.c.gradCheckpointing, step_ms: +median(r.ms).toFixed(1), peak_mib: MiB(r.persistent + stepPeak), step_peak_mib: MiB(stepPeak), persistent_mib: MiB(r.persistent), loss: +r.loss.toFixed(4), skipped_steps: r.skipped, steps, tokens: T };
    console.log(ctx.json ? JSON.stringify(row) : `${row.precision}${r.c.gradCheckpointing ? ' + grad checkpointing' : ''}: ${row.step_ms} ms/step (median of ${steps}), peak ${row.peak_mib} MiB = ${row.persistent_mib} MiB weights, moments and buffers + ${row.step_peak_mib} MiB in the step; loss ${row.loss}${r.tr.scaler ? `, ${r.skipped} of ${steps + 2} steps skipped by the loss scaler` : ''}`);
  }
  for (const r of runs) {
    r.tr.dispose();
    r.built.model.dispose();
  }
});
