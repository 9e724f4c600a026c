// `hlip train` with the reference's text modes (`data.text_process_cfg`, 2026): a one-head model on one
// random sentence per study (CLIP loss), and a dual-head ('dualdinotxt', CLS + register) model on
// 'sentence and report' with the dual loss — head 0 against the sentence, head 1 against the report.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTrainConfig, runTraining, type TrainConfig } from '../src/cli/train-run.js';
import { writeSynth } from '../src/cli/synth.js';
import { synthConfig } from '../src/data/synth.js';
import type { Device } from '../src/gpu/device.js';
import { getDevice } from './helpers/device.js';

let dev: Device;
let root = '';

const config = (trunk: Record<string, unknown>, textMode: string, extra: Record<string, unknown> = {}): TrainConfig =>
  parseTrainConfig(
    {
      model: {
        embed_dim: 16,
        ...extra,
        vision_cfg: { hlip_trunk: { img_size: [8, 16, 16], patch_size: [4, 8, 8], embed_dim: 12, depth: 2, num_heads: 2, slice_attn_indexes: [0], study_attn_indexes: [1], max_num_scans: 4, ...trunk } },
        text_cfg: { hf_model_name: 'tiny', context_length: 96, hf_model_config: { hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 96 } },
      },
      tokenizer: 'bert-base-uncased',
      data: { train: 'data/train.json', kind: 'mri', num_scans: 2, cache_dir: null, text_process_cfg: textMode },
      batch_size: 4,
      steps: 3,
      lr: 5e-3,
      seed: 2,
      init: 'fan-in',
    },
    'modes.json',
  );

beforeAll(async () => {
  dev = await getDevice();
  root = await mkdtemp(join(tmpdir(), 'hlip-modes-'));
  await writeSynth(synthConfig({ kind: 'mri', scans: 2, studies: 8, heldOut: 0, seed: 6, shape: [8, 16, 16] }), join(root, 'data'));
}, 120_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('hlip train: data.text_process_cfg', () => {
  it('unknown modes are refused', () => {
    expect(() => config({}, 'sentences')).toThrow(/'data.text_process_cfg' must be 'report', 'sentence', 'sentence and report'/);
  });

  it("one-head model, 'sentence': trains with the CLIP loss on single sentences", async () => {
    const r = await runTraining(dev, config({}, 'sentence'), { base: root, out: join(root, 'sentence'), quiet: true });
    expect(r.losses.length).toBe(3);
    for (const [, l] of r.losses) expect(Number.isFinite(l) && l > 0).toBe(true);
    expect(r.built.model.logitBiasParam).toBeNull();
    r.built.model.dispose();
  });

  it("dual-head model, 'sentence and report': the dual loss trains both heads and both scales", async () => {
    const cfg = config({ reg_tokens: 1, pool: 'dinotxt' }, 'sentence and report', { init_logit_bias: Math.log(1 / 0.07) });
    const r = await runTraining(dev, cfg, { base: root, out: join(root, 'dual'), quiet: true });
    expect(r.losses.length).toBe(3);
    for (const [, l] of r.losses) expect(Number.isFinite(l) && l > 0).toBe(true);
    // The report log-scale (logit_bias) only gets a gradient through the report head's loss.
    const bias = await r.built.model.logitBiasParam!.item();
    expect(Math.abs(bias - Math.log(1 / 0.07))).toBeGreaterThan(1e-4);
    expect(bias).toBeLessThanOrEqual(Math.log(100) + 1e-6);
    r.built.model.dispose();
    expect(() => config({ reg_tokens: 1, pool: 'dinotxt' }, 'report', { init_logit_bias: -10 })).not.toThrow();
  });

  it('a dual-head model with siglip is refused', async () => {
    const cfg = { ...config({ reg_tokens: 1, pool: 'dinotxt' }, 'report', { init_logit_bias: 0 }), siglip: true };
    await expect(runTraining(dev, cfg, { base: root, out: join(root, 'bad'), quiet: true })).rejects.toThrow(/dual-head model.*siglip/);
  });
});
