// Worker side: train the demo's small HLIP model in the tab. Same pieces as `npm run demo` (the synthetic
// MRI generator, StudyDataset/StudyLoader over the generated NIfTI bytes, fan-in init, cosine schedule,
// Trainer); the data, model and schedule come from src/train/demo-config.ts. The result is written as a
// model.safetensors with the metadata `hlip train` writes, so it loads like any other model file.
import { HlipError } from '../../src/errors.js';
import { parseManifest } from '../../src/data/manifest.js';
import { StudyDataset } from '../../src/data/dataset.js';
import { StudyLoader } from '../../src/data/loader.js';
import { mapStudyFiles, type FileData } from '../../src/data/study-files.js';
import { synthConfig, synthPrompts } from '../../src/data/synth.js';
import { synthFiles } from '../../src/data/synth-writer.js';
import type { Device } from '../../src/gpu/device.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { buildOpenClip } from '../../src/models/openclip.js';
import type { TextTokenizerBase } from '../../src/models/tokenizer.js';
import { DEMO, demoModelConfig } from '../../src/train/demo-config.js';
import { initFanIn } from '../../src/train/init.js';
import { makeSchedule } from '../../src/train/schedule.js';
import { Trainer } from '../../src/train/trainer.js';
import type { Progress } from './protocol.js';

export interface TrainOptions {
  steps: number;
  studies: number;
  seed: number;
}

// open_clip's AdamW defaults for CLIP training, which `hlip train` also uses when a config omits them.
const OPTIM = { weightDecay: DEMO.weightDecay, beta1: DEMO.betas[0], beta2: DEMO.betas[1], eps: DEMO.eps };

/** Trains and returns the model as safetensors bytes. `check` throws when the user cancelled. */
export async function trainDemo(dev: Device, o: TrainOptions, tokenizer: (spec: unknown, contextLength?: number) => Promise<TextTokenizerBase>, progress: (p: Progress) => void, check: () => void): Promise<Uint8Array> {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new HlipError('config', `steps must be a positive integer, got ${o.steps}`);
  if (!Number.isInteger(o.studies) || o.studies < DEMO.batch) throw new HlipError('config', `studies must be an integer of at least one batch (${DEMO.batch}), got ${o.studies}`);
  const cfg = synthConfig({ kind: 'mri', scans: DEMO.scans, studies: o.studies, heldOut: 0, seed: o.seed, shape: DEMO.shape }, DEMO.difficulty);
  const files: [string, FileData][] = [];
  for await (const f of synthFiles(cfg, { onStudy: (_s, done, total) => progress({ stage: 'generating studies', done, total }) })) {
    check();
    files.push([f.path, f.data]);
  }
  const manifestBytes = files.find(([p]) => p === 'train.json')?.[1] as Uint8Array;
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes), 'train.json');

  const modelConfig = demoModelConfig();
  const built = buildOpenClip(dev, modelConfig as never);
  let trainer: Trainer | null = null;
  let loader: StudyLoader | null = null;
  try {
    initFanIn(built.model, o.seed);
    const tok = await tokenizer(modelConfig.text_cfg.hf_tokenizer_name, built.contextLength);
    const ds = new StudyDataset({ manifest, files: mapStudyFiles(files, 'synthetic'), pipeline: { kind: 'mri' }, shape: DEMO.shape, numScans: DEMO.scans, train: true, seed: o.seed });
    loader = new StudyLoader(ds, { batchSize: DEMO.batch, tokenizer: tok, seed: o.seed, prefetch: 2 });
    const t = new Trainer(built.model, {
      lr: DEMO.lr,
      ...OPTIM,
      schedule: makeSchedule({ name: 'cosine', lr: DEMO.lr, warmup: Math.min(DEMO.warmup, o.steps - 1), total: o.steps }),
      loss: 'clip',
      seed: o.seed,
      onMetrics: (m) => progress({ stage: 'training', done: m.step + 1, total: o.steps, loss: m.loss, stepMs: m.stepMs }),
    });
    trainer = t;
    while (t.globalStep < o.steps) {
      check();
      const batches = [];
      for (let k = 0; k < t.batchesPerStep; k++) batches.push(await loader.next());
      await t.step(batches);
    }
    await t.flushMetrics();
    const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
    for (const [name, p] of built.model.stateDict()) tensors.push([name, { dtype: 'F32', shape: [...p.shape], data: (await p.data()) as Float32Array }]);
    return writeSafetensors(tensors, {
      format: 'pt',
      'hlip.model_config': JSON.stringify(modelConfig),
      'hlip.tokenizer': JSON.stringify(modelConfig.text_cfg.hf_tokenizer_name),
      'hlip.data': JSON.stringify({ kind: 'mri', shape: DEMO.shape, num_scans: DEMO.scans, report_prefix: null }),
      'hlip.prompts': JSON.stringify(synthPrompts(cfg)),
    });
  } finally {
    loader?.close();
    trainer?.dispose();
    built.model.dispose();
  }
}
