// `npm run demo` / `hlip demo`: synthetic multi-scan MRI studies → train a small HLIP (slice/scan/study
// blocks) → zero-shot evaluation on the held-out split, plus the same training on shuffled reports as a
// control that must stay near chance. Writes report.json, report.html, report.md and SVG charts.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HlipError } from '../errors.js';
import { synthConfig, type SynthConfig } from '../data/synth.js';
import { parseCsv } from '../eval/csv.js';
import { lossChartSvg, reportHtml, reportMarkdown, rocChartSvg, type ReportInput } from '../eval/report.js';
import { labelsFromCsv, parsePrompts, scoreFindings, zeroShotScores, type FindingResult } from '../eval/zeroshot.js';
import { createNodeDevice } from '../node/gpu.js';
import { numberArg, parseArgs } from './args.js';
import { DEMO } from '../train/demo-config.js';
import { writeSynth } from './synth.js';
import { openDataset, runTraining, type RunResult, type TrainConfig } from './train-run.js';

export const DEMO_USAGE = `usage: npm run demo -- [--out <dir>] [--seed s] [--steps n] [--studies n] [--no-control] [--quiet]

Synthetic brain-MRI-like studies (3 scans: T1, T2, FLAIR) → a small HLIP model trained contrastively on
the studies and their reports → zero-shot AUC per finding on held-out studies. A control model trained
on shuffled reports (same budget) shows the task needs the images. Output in <out> (default runs/demo):
report.json, report.html, report.md, loss.svg, roc.svg, the data set and both runs.`;

export interface DemoOptions {
  out: string;
  seed: number;
  steps?: number;
  studies?: number;
  control?: boolean;
  quiet?: boolean;
}

export interface DemoReport {
  macro_auc: number;
  per_class: Record<string, { auc: number; positives: number; negatives: number }>;
  steps: number;
  seconds: number;
  seed: number;
  train_seconds: number;
  control: { macro_auc: number; per_class: Record<string, { auc: number }>; train_seconds: number } | null;
  data: { studies: number; held_out: number; scans: number; shape: number[]; kind: 'mri' };
}

export async function synthesize(cfg: SynthConfig, dir: string, log: (l: string) => void): Promise<void> {
  const stamp = join(dir, 'demo-synth.json');
  const want = JSON.stringify(cfg);
  if (existsSync(stamp) && (await readFile(stamp, 'utf8')) === want) {
    log(`synth: reusing ${dir}`);
    return;
  }
  await writeSynth(cfg, dir, log);
  await writeFile(stamp, want);
}

export function trainConfig(dataDir: string, o: Pick<DemoOptions, 'seed' | 'steps'>, shuffled: boolean): TrainConfig {
  return {
    model: DEMO.model as unknown as TrainConfig['model'],
    tokenizer: 'bert-base-uncased',
    data: { train: join(dataDir, 'train.json'), kind: 'mri', num_scans: DEMO.scans, shape: DEMO.shape, cache_dir: join(dataDir, '..', 'cache'), shuffle_reports: shuffled },
    batch_size: DEMO.batch,
    steps: o.steps ?? DEMO.steps,
    lr: DEMO.lr,
    warmup: DEMO.warmup,
    wd: DEMO.weightDecay,
    seed: o.seed,
    init: DEMO.init,
    save_frequency: 50,
    log_every: 5,
  };
}

export async function evaluate(r: RunResult, dataDir: string, seed: number): Promise<{ perClass: Record<string, FindingResult>; macroAuc: number }> {
  const ds = await openDataset(r.config, join(dataDir, 'valid.json'), { train: false, base: process.cwd(), cacheDir: join(dataDir, '..', 'cache'), seed, shape: DEMO.shape });
  const prompts = parsePrompts(JSON.parse(await readFile(join(dataDir, 'prompts.json'), 'utf8')), join(dataDir, 'prompts.json'));
  const prefix = 'This MRI study shows: ';
  const scores = await zeroShotScores(r.built.model, r.tokenizer, ds, prompts, { batchSize: 16, template: (p) => prefix + p });
  const csvPath = join(dataDir, 'valid_labels.csv');
  const csv = parseCsv(await readFile(csvPath, 'utf8'), csvPath);
  return scoreFindings(scores, labelsFromCsv(csv.header, csv.rows, csvPath));
}

export async function runDemo(o: DemoOptions): Promise<DemoReport> {
  const t0 = performance.now();
  const out = resolve(o.out);
  const log = o.quiet ? () => {} : (l: string) => console.error(l);
  await mkdir(out, { recursive: true });
  const dataDir = join(out, 'data');
  const studies = o.studies ?? DEMO.studies;
  const scfg = synthConfig({ kind: 'mri', scans: DEMO.scans, studies, heldOut: Math.round((studies * DEMO.heldOut) / DEMO.studies), seed: o.seed, shape: DEMO.shape }, DEMO.difficulty);
  await synthesize(scfg, dataDir, log);
  const dev = await createNodeDevice();
  const main = await runTraining(dev, trainConfig(dataDir, o, false), { out: join(out, 'main'), quiet: !!o.quiet, label: 'train' });
  const mainEval = await evaluate(main, dataDir, o.seed);
  main.built.model.dispose();
  log(`held-out macro AUC ${mainEval.macroAuc.toFixed(3)} after ${main.steps} steps (${main.seconds.toFixed(0)} s)`);
  let control: { r: RunResult; e: { perClass: Record<string, FindingResult>; macroAuc: number } } | null = null;
  if (o.control ?? true) {
    const r = await runTraining(dev, trainConfig(dataDir, o, true), { out: join(out, 'control'), quiet: !!o.quiet, label: 'control (shuffled reports)' });
    const e = await evaluate(r, dataDir, o.seed);
    r.built.model.dispose();
    log(`control macro AUC ${e.macroAuc.toFixed(3)}`);
    control = { r, e };
  }
  const seconds = (performance.now() - t0) / 1000;
  const report: DemoReport = {
    macro_auc: mainEval.macroAuc,
    per_class: Object.fromEntries(Object.entries(mainEval.perClass).map(([k, v]) => [k, { auc: v.auc, positives: v.positives, negatives: v.negatives }])),
    steps: main.steps,
    seconds: +seconds.toFixed(1),
    seed: o.seed,
    train_seconds: +main.seconds.toFixed(1),
    control: control ? { macro_auc: control.e.macroAuc, per_class: Object.fromEntries(Object.entries(control.e.perClass).map(([k, v]) => [k, { auc: v.auc }])), train_seconds: +control.r.seconds.toFixed(1) } : null,
    data: { studies: scfg.studies - scfg.heldOut, held_out: scfg.heldOut, scans: DEMO.scans, shape: [...DEMO.shape], kind: 'mri' },
  };
  const input: ReportInput = {
    title: `HLIP demo (seed ${o.seed})`,
    summary: [
      `${report.data.studies} training and ${report.data.held_out} held-out synthetic MRI studies, ${DEMO.scans} scans of ${DEMO.shape.join('×')} voxels each`,
      `model: HLIP ViT (patch ${DEMO.model.vision_cfg.hlip_trunk.patch_size.join('×')}, embed ${DEMO.model.vision_cfg.hlip_trunk.embed_dim}, 4 blocks: slice, scan, slice, study attention; CLS + mean-token pooling), BERT text tower (2 layers, 64 wide), CLIP loss; synthetic difficulty '${DEMO.difficulty}'`,
      `${main.steps} steps of batch ${DEMO.batch} in ${main.seconds.toFixed(0)} s; whole demo ${seconds.toFixed(0)} s`,
      `held-out zero-shot macro AUC ${mainEval.macroAuc.toFixed(3)}` + (control ? `; control trained on shuffled reports ${control.e.macroAuc.toFixed(3)}` : ''),
    ],
    loss: main.losses,
    ...(control ? { controlLoss: control.r.losses, controlMacroAuc: control.e.macroAuc } : {}),
    perClass: Object.fromEntries(Object.entries(mainEval.perClass).map(([k, v]) => [k, { auc: v.auc, roc: { fpr: [...v.roc.fpr], tpr: [...v.roc.tpr] }, ...(control ? { controlAuc: control.e.perClass[k]?.auc ?? NaN } : {}) }])),
    macroAuc: mainEval.macroAuc,
  };
  await writeFile(join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(join(out, 'report.html'), reportHtml(input));
  await writeFile(join(out, 'loss.svg'), lossChartSvg(input));
  await writeFile(join(out, 'roc.svg'), rocChartSvg(input));
  await writeFile(join(out, 'report.md'), reportMarkdown(input, { loss: 'loss.svg', roc: 'roc.svg' }));
  return report;
}

export async function demo(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(DEMO_USAGE);
    return 0;
  }
  const p = parseArgs(args, ['out', 'seed', 'steps', 'studies'], ['no-control', 'quiet'], DEMO_USAGE);
  if (p.positional.length) throw new HlipError('config', `unexpected argument '${p.positional[0]}'\n${DEMO_USAGE}`);
  const seed = p.values['seed'] !== undefined ? numberArg('seed', p.values['seed']) : 1;
  const r = await runDemo({
    out: p.values['out'] ?? 'runs/demo',
    seed,
    control: !p.flags.has('no-control'),
    quiet: p.flags.has('quiet'),
    ...(p.values['steps'] !== undefined ? { steps: numberArg('steps', p.values['steps']) } : {}),
    ...(p.values['studies'] !== undefined ? { studies: numberArg('studies', p.values['studies']) } : {}),
  });
  console.log(`macro AUC ${r.macro_auc.toFixed(3)} (control ${r.control ? r.control.macro_auc.toFixed(3) : 'not run'}) in ${r.seconds.toFixed(0)} s; report: ${join(p.values['out'] ?? 'runs/demo', 'report.html')}`);
  return 0;
}
