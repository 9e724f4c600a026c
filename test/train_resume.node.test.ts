// Crash consistency of `hlip train`: a run killed with SIGKILL (between steps, and in the middle of a
// checkpoint write) and resumed with --resume logs the same loss sequence as an uninterrupted run.
// Runs the built CLI (dist/node-cli/cli.js, built by `npm test` before vitest) as child processes.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthConfig } from '../src/data/synth.js';
import { writeSynth } from '../src/cli/synth.js';

const CLI = resolve('dist/node-cli/cli.js');
const STEPS = 8;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}, killWhen?: (dir: string) => boolean, dir?: string): Promise<Exit> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? '/tmp', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let timer: NodeJS.Timeout | null = null;
    if (killWhen && dir) {
      timer = setInterval(() => {
        if (killWhen(dir)) {
          p.kill('SIGKILL');
          if (timer) clearInterval(timer);
        }
      }, 20);
    }
    p.on('error', rej);
    p.on('exit', (code, signal) => {
      if (timer) clearInterval(timer);
      res({ code, signal, stderr });
    });
  });
}

async function losses(dir: string): Promise<number[]> {
  const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).split('\n').filter((l) => l.trim());
  const rows = lines.map((l) => JSON.parse(l) as { step: number; loss: number });
  expect(rows.map((r) => r.step)).toEqual(rows.map((_, i) => i));
  return rows.map((r) => r.loss);
}

let root = '';
let config = '';

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hlip-resume-'));
  await writeSynth(synthConfig({ kind: 'mri', scans: 2, studies: 12, heldOut: 0, seed: 3, shape: [8, 16, 16] }), join(root, 'data'));
  config = join(root, 'train.json');
  await writeFile(
    config,
    JSON.stringify({
      model: {
        embed_dim: 16,
        vision_cfg: { hlip_trunk: { img_size: [8, 16, 16], patch_size: [4, 8, 8], embed_dim: 12, depth: 2, num_heads: 2, slice_attn_indexes: [0], study_attn_indexes: [1], max_num_scans: 4, drop_path_rate: 0.1 } },
        text_cfg: { hf_model_name: 'tiny', context_length: 96, hf_model_config: { hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 96 } },
      },
      tokenizer: 'bert-base-uncased',
      data: { train: 'data/train.json', kind: 'mri', num_scans: 3, cache_dir: 'cache' },
      batch_size: 4,
      steps: STEPS,
      lr: 2e-3,
      warmup: 2,
      seed: 5,
      force_patch_dropout: 0.25,
      save_frequency: 2,
    }),
  );
}, 120_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('hlip train: SIGKILL and --resume', () => {
  it('killed between steps, and killed in the middle of a checkpoint write: resumed losses equal the uninterrupted run', async () => {
    const ref = join(root, 'ref');
    const straight = await run(['train', '--config', config, '--out', ref, '--quiet']);
    expect(straight.code, straight.stderr).toBe(0);
    const want = await losses(ref);
    expect(want).toHaveLength(STEPS);
    expect(want.every(Number.isFinite)).toBe(true);

    // 1. SIGKILL from outside as soon as the first checkpoint (step 2) exists.
    const a = join(root, 'a');
    const killed = await run(['train', '--config', config, '--out', a, '--quiet'], {}, (d) => existsSync(join(d, 'checkpoints', 'latest.safetensors')), a);
    expect(killed.signal).toBe('SIGKILL');
    const resumedA = await run(['train', '--config', config, '--out', a, '--resume', '--quiet']);
    expect(resumedA.code, resumedA.stderr).toBe(0);
    const gotA = await losses(a);
    expect(gotA).toHaveLength(STEPS);
    gotA.forEach((l, i) => expect(Math.abs(l - (want[i] as number)), `step ${i}`).toBeLessThanOrEqual(1e-5));

    // 2. Killed while writing the step-4 checkpoint: the step-2 file stays whole, the temp file is
    // cleaned up on resume, and the run continues from step 2.
    const b = join(root, 'b');
    const midWrite = await run(['train', '--config', config, '--out', b, '--quiet'], { HLIP_TEST_KILL_DURING_SAVE: '4' });
    expect(midWrite.signal).toBe('SIGKILL');
    const left = await readdir(join(b, 'checkpoints'));
    expect(left.some((f) => f.endsWith('.tmp'))).toBe(true);
    const resumedB = await run(['train', '--config', config, '--out', b, '--resume', '--quiet']);
    expect(resumedB.code, resumedB.stderr).toBe(0);
    expect((await readdir(join(b, 'checkpoints'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const gotB = await losses(b);
    expect(gotB).toHaveLength(STEPS);
    gotB.forEach((l, i) => expect(Math.abs(l - (want[i] as number)), `step ${i}`).toBeLessThanOrEqual(1e-5));
    // The loss actually moved: the comparison is not between constant sequences.
    expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(1e-3);
  }, 600_000);

  it('--resume without a checkpoint is a clear error naming the file', async () => {
    const r = await run(['train', '--config', config, '--out', join(root, 'none'), '--resume', '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no checkpoint at .*latest\.safetensors/);
  }, 120_000);
});
