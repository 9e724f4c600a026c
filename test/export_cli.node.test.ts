// `hlip export --to pt` end to end (in-process, as test/eval_cli.node.test.ts runs its command): a
// model.safetensors as train-run writes it and a real training checkpoint (two AdamW steps) exported
// to the reference checkpoint layout, read back with readPt and converted back with `hlip convert`.
// With HLIP_EXPORT_CHECK_DIR set, the files are also left there for scripts/check_pt_export.py
// (PyTorch's torch.load(weights_only=True) and the reference model definition).
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { HlipError } from '../src/errors.js';
import { convert } from '../src/cli/convert.js';
import { exportCommand } from '../src/cli/export.js';
import type { Device } from '../src/gpu/device.js';
import { readPtFile, readSafetensorsFile, writeSafetensorsFile } from '../src/io/node-files.js';
import { PyDict, isTuple } from '../src/io/pickle.js';
import type { PtTensor } from '../src/io/pt.js';
import type { StDType } from '../src/io/dtypes.js';
import { buildOpenClip, parseOpenClipConfig } from '../src/models/openclip.js';
import { encodeCheckpoint } from '../src/train/checkpoint.js';
import { DDP_PREFIX, referenceOrder } from '../src/train/pt-export.js';
import { Trainer } from '../src/train/trainer.js';
import { getDevice } from './helpers/device.js';
import { tinyBatch } from './helpers/tiny_clip.js';

/** A small open_clip config the reference can build too (scripts/check_pt_export.py registers the trunk). */
const MODEL_CONFIG = {
  embed_dim: 8,
  custom_text: true,
  vision_cfg: {
    hlip_trunk: { img_size: [4, 8, 8], patch_size: [2, 4, 4], embed_dim: 12, depth: 3, num_heads: 2, max_num_scans: 4, slice_attn_indexes: [0], scan_attn_indexes: [1], study_attn_indexes: [2] },
    timm_model_pretrained: false,
    timm_pool: 'token',
    timm_proj: 'linear',
  },
  text_cfg: { context_length: 8, vocab_size: 32, width: 16, heads: 2, layers: 1 },
};

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

let dev: Device;
let dir: string;
const keep = process.env['HLIP_EXPORT_CHECK_DIR'];

beforeAll(async () => {
  dev = await getDevice();
  dir = await mkdtemp(join(tmpdir(), 'hlip-export-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function run(cmd: (a: string[]) => Promise<number>, args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  try {
    return { code: await cmd(args), out: out.join('\n') };
  } finally {
    vi.restoreAllMocks();
  }
}

async function keepFiles(...names: string[]): Promise<void> {
  if (!keep) return;
  await mkdir(keep, { recursive: true });
  for (const n of names) await copyFile(join(dir, n), join(keep, n));
  await writeFile(join(keep, 'model_config.json'), JSON.stringify(MODEL_CONFIG, null, 2));
}

describe('hlip export --to pt', () => {
  it('model.safetensors (as train-run writes it) → reference layout → hlip convert: identical tensors', async () => {
    const { model } = buildOpenClip(dev, parseOpenClipConfig(MODEL_CONFIG));
    const tensors: [string, { dtype: StDType; shape: number[]; data: Float32Array }][] = [];
    for (const [name, t] of model.stateDict()) tensors.push([name, { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array }]);
    model.dispose();
    const src = join(dir, 'model.safetensors');
    await writeSafetensorsFile(src, tensors, { format: 'pt', 'hlip.model_config': JSON.stringify(MODEL_CONFIG), 'hlip.tokenizer': '{}', 'hlip.data': '{}' });

    const out = join(dir, 'model_export.pt');
    const r = await run(exportCommand, ['--to', 'pt', src, out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote .*model_export\.pt \(\d+ state_dict tensors, no optimizer; epoch 0, name 'model'/);
    const ck = await readPtFile(out);
    try {
      const root = ck.root as PyDict;
      expect([...root.keys()]).toEqual(['epoch', 'name', 'state_dict']);
      expect([ck.epoch, ck.runName]).toEqual([0, 'model']);
      const sd = root.get('state_dict') as PyDict;
      expect(sd.ordered).toBe(true);
      expect([...sd.keys()]).toEqual(referenceOrder(tensors.map(([n]) => n)).map((n) => DDP_PREFIX + n));
      // Own tensors before children's, as PyTorch lists them.
      expect([...sd.keys()].slice(0, 4)).toEqual(['module.logit_scale', 'module.visual.trunk.cls_token', 'module.visual.trunk.spatial_posemb', 'module.visual.trunk.sequential_posemb']);
      for (const [n, t] of tensors) {
        const p = ck.stateDict!.get(DDP_PREFIX + n)!;
        expect(p.shape, n).toEqual(t.shape);
        expect(equalBytes(await p.bytes(), new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)), n).toBe(true);
      }
    } finally {
      await ck.close();
    }

    // Back with hlip convert: the same names (module. removed) and bytes.
    const back = join(dir, 'model_back.safetensors');
    expect((await run(convert, [out, back])).code).toBe(0);
    const a = await readSafetensorsFile(src);
    const b = await readSafetensorsFile(back);
    try {
      expect(b.names().sort()).toEqual(a.names().sort());
      for (const n of a.names()) expect(equalBytes(await b.bytes(n), await a.bytes(n)), n).toBe(true);
      expect(b.metadata).toMatchObject({ epoch: '0', name: 'model' });
    } finally {
      await a.close();
      await b.close();
    }

    // --epoch / --name; exporting the converted file again keeps its epoch and name.
    const again = join(dir, 'again.pt');
    expect((await run(exportCommand, ['--to', 'pt', back, again, '--epoch', '12', '--name', 'run-x'])).code).toBe(0);
    const ck2 = await readPtFile(again);
    expect([ck2.epoch, ck2.runName, ck2.stateDict!.size]).toEqual([12, 'run-x', tensors.length]);
    await ck2.close();
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await keepFiles('model.safetensors', 'model_export.pt');
  });

  it('training checkpoint → AdamW state in the reference numbering (moments follow their parameter by name)', async () => {
    const { model } = buildOpenClip(dev, parseOpenClipConfig(MODEL_CONFIG));
    const tr = new Trainer(model, { seed: 3, lr: 1e-3 });
    await tr.step([tinyBatch(0)]);
    await tr.step([tinyBatch(1)]);
    const c = await tr.checkpoint({ epoch: 1, loader: { version: 1, epoch: 1, position: 0 }, config: { model: MODEL_CONFIG } });
    tr.dispose();
    model.dispose();
    const src = join(dir, 'latest.safetensors');
    await writeFile(src, encodeCheckpoint(c));

    const out = join(dir, 'latest_export.pt');
    const r = await run(exportCommand, ['--to', 'pt', src, out]);
    expect(r.code).toBe(0);
    const trainable = c.optimizerParams.length;
    expect(r.out).toContain(`training checkpoint: ${c.model.size} state_dict tensors, ${trainable} optimizer states; epoch 1, name 'latest'`);
    const ck = await readPtFile(out);
    try {
      const root = ck.root as PyDict;
      expect([...root.keys()]).toEqual(['epoch', 'name', 'state_dict', 'optimizer']);
      const opt = root.get('optimizer') as PyDict;
      const groups = opt.get('param_groups') as PyDict[];
      expect(groups.map((g) => [...g.keys()])).toEqual(Array(2).fill(['weight_decay', 'lr', 'betas', 'eps', 'amsgrad', 'foreach', 'maximize', 'capturable', 'params']));
      expect(groups.map((g) => [g.get('weight_decay'), g.get('lr'), g.get('betas'), g.get('eps'), g.get('amsgrad'), g.get('foreach')])).toEqual(c.optimizer.paramGroups.map((g) => [g.weightDecay, g.lr, g.betas, g.eps, false, null]));
      expect(isTuple(groups[0]!.get('betas')!)).toBe(true);
      const ids = groups.flatMap((g) => g.get('params') as number[]);
      expect(ids).toEqual(Array.from({ length: trainable }, (_, i) => i));
      // Reference numbering: per group, parameters in state_dict order.
      const order = referenceOrder([...c.model.keys()]);
      const groupNames = c.optimizer.paramGroups.map((g) => new Set(g.params.map((i) => c.optimizerParams[i])));
      const refNames = groupNames.flatMap((s) => order.filter((n) => s.has(n)));
      expect(refNames).not.toEqual(c.optimizerParams); // the mapping is exercised (TextTransformer's positional_embedding)
      const state = opt.get('state') as PyDict;
      expect([...state.keys()]).toEqual(ids);
      for (const [j, name] of refNames.entries()) {
        const i = c.optimizerParams.indexOf(name);
        const s = c.optimizer.state[i]!;
        const e = state.get(j) as PyDict;
        expect([...e.keys()]).toEqual(['step', 'exp_avg', 'exp_avg_sq']);
        const step = e.get('step') as PtTensor;
        expect([step.dtype, step.shape, Array.from(await step.float32())]).toEqual(['F32', [], [s.step]]);
        const shape = c.model.get(name)!.shape;
        for (const [field, want] of [['exp_avg', s.expAvg], ['exp_avg_sq', s.expAvgSq]] as const) {
          const t = e.get(field) as PtTensor;
          expect(t.shape, `${name} ${field}`).toEqual(shape);
          expect(equalBytes(await t.bytes(), new Uint8Array(want.buffer, want.byteOffset, want.byteLength)), `${name} ${field}`).toBe(true);
        }
      }
      for (const [n, t] of c.model) expect(equalBytes(await ck.stateDict!.get(DDP_PREFIX + n)!.bytes(), new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)), n).toBe(true);
    } finally {
      await ck.close();
    }

    // --no-optimizer, and a mid-epoch checkpoint gets a note.
    const mid = join(dir, 'mid.safetensors');
    await writeFile(mid, encodeCheckpoint({ ...c, loader: { version: 1, epoch: 1, position: 3 } }));
    const r2 = await run(exportCommand, ['--to', 'pt', mid, join(dir, 'mid.pt'), '--no-optimizer']);
    expect(r2.out).toMatch(/after batch 3 of epoch 1; the reference resumes at the start of epoch 1/);
    const ck2 = await readPtFile(join(dir, 'mid.pt'));
    expect([...(ck2.root as PyDict).keys()]).toEqual(['epoch', 'name', 'state_dict']);
    await ck2.close();
    await keepFiles('latest.safetensors', 'latest_export.pt');
  });

  it('clear errors naming the file', async () => {
    await expect(run(exportCommand, ['--to', 'onnx', 'a', 'b'])).rejects.toThrow(/only 'pt'/);
    await expect(run(exportCommand, ['a.safetensors', 'b.pt'])).rejects.toThrow(/--to is required/);
    await expect(run(exportCommand, ['--to', 'pt', 'a.safetensors'])).rejects.toThrow(/expected <in.safetensors> <out.pt>/);
    const missing = join(dir, 'nope.safetensors');
    await expect(run(exportCommand, ['--to', 'pt', missing, join(dir, 'x.pt')])).rejects.toThrow(new RegExp(`${missing}: cannot open`));
    const pt = join(dir, 'model_export.pt');
    await expect(run(exportCommand, ['--to', 'pt', pt, join(dir, 'y.pt')])).rejects.toThrow(/model_export\.pt: is already a PyTorch checkpoint/);
    await expect(run(exportCommand, ['--to', 'pt', join(dir, 'model.safetensors'), join(dir, 'z.pt'), '--epoch', '1.5'])).rejects.toBeInstanceOf(HlipError);
    const broken = join(dir, 'broken.safetensors');
    await writeFile(broken, new Uint8Array([1, 2, 3]));
    await expect(run(exportCommand, ['--to', 'pt', broken, join(dir, 'w.pt')])).rejects.toThrow(/broken\.safetensors/);
    expect((await readdir(dir)).filter((n) => /^[xyzw]\.pt$|\.tmp$/.test(n))).toEqual([]);
  });
});
