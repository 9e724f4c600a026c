// `hlip train` with `precision: "amp"` and `grad_checkpointing: true` in the config: a run stopped after
// its first checkpoint and continued with --resume ends with the uninterrupted run's losses, weights,
// AdamW step counts and GradScaler state (saved in the checkpoint, restored on resume).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTrainConfig, runTraining, type TrainConfig } from '../src/cli/train-run.js';
import { writeSynth } from '../src/cli/synth.js';
import { synthConfig } from '../src/data/synth.js';
import type { Device } from '../src/gpu/device.js';
import { decodeCheckpoint } from '../src/train/checkpoint.js';
import { getDevice } from './helpers/device.js';

let dev: Device;
let root = '';
let cfg: TrainConfig;

beforeAll(async () => {
  dev = await getDevice();
  root = await mkdtemp(join(tmpdir(), 'hlip-amp-'));
  await writeSynth(synthConfig({ kind: 'mri', scans: 2, studies: 8, heldOut: 0, seed: 4, shape: [8, 16, 16] }), join(root, 'data'));
  cfg = parseTrainConfig(
    {
      model: {
        embed_dim: 16,
        vision_cfg: { hlip_trunk: { img_size: [8, 16, 16], patch_size: [4, 8, 8], embed_dim: 12, depth: 2, num_heads: 2, slice_attn_indexes: [0], study_attn_indexes: [1], max_num_scans: 4, drop_path_rate: 0.1 } },
        text_cfg: { hf_model_name: 'tiny', context_length: 96, hf_model_config: { hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 96 } },
      },
      tokenizer: 'bert-base-uncased',
      data: { train: 'data/train.json', kind: 'mri', num_scans: 2, cache_dir: null },
      batch_size: 4,
      steps: 4,
      lr: 2e-3,
      seed: 2,
      save_frequency: 2,
      precision: 'amp',
      grad_checkpointing: true,
      // Reference init draws from a process-wide counter; fan-in init depends on the seed alone.
      init: 'fan-in',
    },
    'amp.json',
  );
}, 120_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe("hlip train: precision 'amp' + grad_checkpointing", () => {
  it('config fields are checked', () => {
    expect(() => parseTrainConfig({ ...cfg, precision: 'fp16' }, 'x.json')).toThrow(/'precision' must be 'fp32' or 'amp'/);
    expect(() => parseTrainConfig({ ...cfg, grad_checkpointing: 1 }, 'x.json')).toThrow(/'grad_checkpointing' must be true or false/);
  });

  it('stopped after the first checkpoint and resumed: same losses, weights, step counts and scaler state as straight through', async () => {
    if (!dev.caps.f16) return;
    const opts = { base: root, quiet: true };
    const straight = await runTraining(dev, cfg, { ...opts, out: join(root, 'straight') });
    straight.built.model.dispose();
    const first = await runTraining(dev, cfg, { ...opts, out: join(root, 'resumed'), stopAfter: 2 });
    first.built.model.dispose();
    expect(first.steps).toBe(2);
    const rest = await runTraining(dev, cfg, { ...opts, out: join(root, 'resumed'), resume: true });
    rest.built.model.dispose();
    expect(rest.losses.map(([s]) => s)).toEqual([0, 1, 2, 3]);
    expect(rest.losses).toEqual(straight.losses);
    const a = await decodeCheckpoint(await readFile(join(root, 'straight', 'checkpoints', 'latest.safetensors')), 'straight');
    const b = await decodeCheckpoint(await readFile(join(root, 'resumed', 'checkpoints', 'latest.safetensors')), 'resumed');
    expect(a.scaler?.scale).toBeGreaterThan(0);
    expect(b.scaler).toEqual(a.scaler);
    expect(b.optimizer.state.map((s) => s?.step ?? null)).toEqual(a.optimizer.state.map((s) => s?.step ?? null));
    for (const [n, t] of a.model) expect(b.model.get(n)?.data, n).toEqual(t.data);
    // amp runs log the loss scale and whether the step was skipped, one line per step.
    const log = (await readFile(join(root, 'straight', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss_scale: number; skipped: boolean });
    expect(log.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    for (const r of log) {
      expect(r.loss_scale).toBeGreaterThan(0);
      expect(typeof r.skipped).toBe('boolean');
    }
    expect(log[3]!.loss_scale).toBe(a.scaler!.scale);
  }, 300_000);
});
