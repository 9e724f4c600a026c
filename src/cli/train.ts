// `hlip train --config <file.json>`: train an HLIP model (see TrainConfig in train-run.ts).
import { readFile } from 'node:fs/promises';
import { HlipError } from '../errors.js';
import { createNodeDevice } from '../node/gpu.js';
import { numberArg, parseArgs } from './args.js';
import { configBase, parseTrainConfig, runTraining, type TrainConfig } from './train-run.js';

export const TRAIN_USAGE = `usage: hlip train --config <file.json> [--out <dir>] [--resume] [overrides]

Trains an HLIP model contrastively on a study manifest. The config holds the model (open_clip model
config), tokenizer, data and hyper-parameters (docs/training.md); flags override it:
  --batch-size n  --epochs n  --steps n  --lr x  --wd x  --beta1 x  --beta2 x  --eps x  --warmup n
  --lr-scheduler cosine|const|const-cooldown  --accum-freq n  --accum-batch n  --grad-clip-norm x
  --force-patch-dropout p  --lock-text  --siglip  --seed n  --save-frequency n  --log-every n
Writes <out>/metrics.jsonl, <out>/checkpoints/latest.safetensors (every --save-frequency steps,
atomically) and <out>/model.safetensors at the end. --resume continues from the latest checkpoint
with the same loss sequence as an uninterrupted run.`;

const NUMERIC: Record<string, keyof TrainConfig> = {
  'batch-size': 'batch_size', epochs: 'epochs', steps: 'steps', lr: 'lr', wd: 'wd', beta1: 'beta1', beta2: 'beta2', eps: 'eps', warmup: 'warmup',
  'accum-freq': 'accum_freq', 'accum-batch': 'accum_batch', 'grad-clip-norm': 'grad_clip_norm', 'force-patch-dropout': 'force_patch_dropout',
  seed: 'seed', 'save-frequency': 'save_frequency', 'log-every': 'log_every',
};

export async function train(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(TRAIN_USAGE);
    return 0;
  }
  const p = parseArgs(args, ['config', 'out', 'lr-scheduler', 'stop-after', ...Object.keys(NUMERIC)], ['resume', 'quiet', 'lock-text', 'siglip'], TRAIN_USAGE);
  if (p.positional.length) throw new HlipError('config', `unexpected argument '${p.positional[0]}'\n${TRAIN_USAGE}`);
  const path = p.values['config'];
  if (!path) throw new HlipError('config', `--config <file.json> is required\n${TRAIN_USAGE}`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new HlipError('config', `${path}: ${(e as Error).message}`, { source: path });
  }
  for (const [flag, key] of Object.entries(NUMERIC)) if (p.values[flag] !== undefined) json[key] = numberArg(flag, p.values[flag] as string);
  if (p.values['lr-scheduler']) json['lr_scheduler'] = p.values['lr-scheduler'];
  if (p.flags.has('lock-text')) json['lock_text'] = true;
  if (p.flags.has('siglip')) json['siglip'] = true;
  if (p.values['steps'] !== undefined) delete json['epochs'];
  const cfg = parseTrainConfig(json, path);
  const dev = await createNodeDevice();
  const r = await runTraining(dev, cfg, {
    out: p.values['out'] ?? 'runs/train',
    base: configBase(path),
    resume: p.flags.has('resume'),
    quiet: p.flags.has('quiet'),
    ...(p.values['stop-after'] !== undefined ? { stopAfter: numberArg('stop-after', p.values['stop-after']) } : {}),
  });
  const last = r.losses[r.losses.length - 1];
  console.log(`trained ${r.steps} steps in ${r.seconds.toFixed(1)} s; last loss ${last ? last[1].toFixed(4) : 'n/a'}; weights: ${r.modelPath}`);
  return 0;
}
