// `npm run bench -- train [--json] [--steps n] [--seed s] [--out dir]`: the demo's training run with the
// hierarchical layout (slice, scan, slice, study blocks) versus study attention in every block, same
// synthetic multi-scan data, same step budget, one process. Prints step time and held-out AUC.
import { join, resolve } from 'node:path';
import { synthConfig } from '../src/data/synth.js';
import { evaluate, synthesize, trainConfig } from '../src/cli/demo.js';
import { DEMO } from '../src/train/demo-config.js';
import { runTraining } from '../src/cli/train-run.js';
import { createNodeDevice } from '../src/node/gpu.js';
import { registerBench } from './registry.js';

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

registerBench('train', '[--steps n] [--seed s] [--out dir]: demo training, hierarchical vs study-only attention', async (ctx) => {
  const opt = (k: string, d: number) => {
    const i = ctx.args.indexOf(`--${k}`);
    return i >= 0 ? Number(ctx.args[i + 1]) : d;
  };
  const outIdx = ctx.args.indexOf('--out');
  const out = resolve(outIdx >= 0 ? (ctx.args[outIdx + 1] as string) : 'runs/bench-train');
  const seed = opt('seed', 1);
  const steps = opt('steps', DEMO.steps);
  const dataDir = join(out, 'data');
  const log = ctx.json ? () => {} : (l: string) => console.error(l);
  await synthesize(synthConfig({ kind: 'mri', scans: DEMO.scans, studies: DEMO.studies, heldOut: DEMO.heldOut, seed, shape: DEMO.shape }, DEMO.difficulty), dataDir, log);
  const dev = await createNodeDevice();
  for (const layout of ['hlip', 'study-only'] as const) {
    const cfg = trainConfig(dataDir, { seed, steps }, false);
    const trunk = (cfg.model.vision_cfg as { hlip_trunk: Record<string, unknown> }).hlip_trunk;
    const depth = trunk['depth'] as number;
    if (layout === 'study-only') {
      cfg.model = { ...cfg.model, vision_cfg: { ...cfg.model.vision_cfg, hlip_trunk: { ...trunk, slice_attn_indexes: [], scan_attn_indexes: [], study_attn_indexes: [...Array(depth).keys()] } } };
    }
    cfg.save_frequency = 0;
    const r = await runTraining(dev, cfg, { out: join(out, layout), quiet: ctx.json, label: layout });
    const e = await evaluate(r, dataDir, seed);
    r.built.model.dispose();
    // The first logged window includes shader compilation; the median ignores it.
    const row = { bench: 'train', layout, step_ms: +median(r.stepMs.slice(1)).toFixed(1), auc: +e.macroAuc.toFixed(4), steps: r.steps, seconds: +r.seconds.toFixed(1) };
    console.log(ctx.json ? JSON.stringify(row) : `${layout}: ${row.step_ms} ms/step, held-out macro AUC ${row.auc}, ${row.steps} steps in ${row.seconds} s`);
  }
});
