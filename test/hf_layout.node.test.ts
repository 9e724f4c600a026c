// Hugging Face snapshot directories on disk: the 2025_10_08 layout (open_clip_config.json), `hlip convert
// <hf-dir>`, and the error paths (missing weights, ambiguous or unfitting configs, shape mismatch).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { convert } from '../src/cli/convert.js';
import { HlipError, ShapeError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import { AmbiguousConfigError, loadHfModel, openHfSnapshot } from '../src/io/hf.js';
import { readSafetensorsFile } from '../src/io/node-files.js';
import { convertHfDir, nodeHfFiles } from '../src/io/node-hf.js';
import { l2Normalize } from '../src/ops/index.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { maxRel } from './helpers/golden.js';
import { dualSnapshot, openClipConfigSnapshot, type DualSnapshot } from './helpers/hf_snapshot.js';
import { OUT_TOL } from './helpers/visual_tolerances.js';

let dev: Device;
let root: string;
let dual: DualSnapshot;
beforeAll(async () => {
  dev = await getDevice();
  root = await mkdtemp(join(tmpdir(), 'hlip-hf-'));
  dual = await dualSnapshot();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
/** Writes path → bytes under a fresh folder; `edit` may add, replace or delete (null) entries. */
async function writeSnapshot(files: ReadonlyMap<string, Uint8Array>, edit: Record<string, Uint8Array | object | null> = {}): Promise<string> {
  const dir = join(root, `snap${n++}`);
  const all = new Map(files);
  for (const [p, v] of Object.entries(edit)) {
    if (v === null) all.delete(p);
    else all.set(p, v instanceof Uint8Array ? v : new TextEncoder().encode(JSON.stringify(v)));
  }
  for (const [p, b] of all) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), b);
  }
  return dir;
}

/** The tiny dual config with its block levels permuted: same shapes, a different network. */
const permuted = () => {
  const c = structuredClone(dual.config) as { vision_cfg: { hlip_trunk: Record<string, unknown> } };
  const k = c.vision_cfg.hlip_trunk;
  [k['slice_attn_indexes'], k['scan_attn_indexes']] = [k['scan_attn_indexes'], k['slice_attn_indexes']];
  return c;
};

describe('Hugging Face snapshot directories', () => {
  it('2025_10_08 layout: open_clip_config.json model_cfg, name from the root model_configs/, forward check of the checkpoint', async () => {
    const { files, ckpt } = await openClipConfigSnapshot();
    const dir = await writeSnapshot(files);
    const hf = await loadHfModel(dev, await nodeHfFiles(dir));
    try {
      expect(hf.modelName).toBe('hlip_tiny_ckpt');
      expect(hf.configPath).toBe('open_clip_config.json');
      expect(hf.configSource).toBe('open_clip_config');
      expect(hf.missing).toEqual([]);
      expect(hf.unexpected).toEqual([]);
      expect(hf.tokenizer).toBeNull();
      await scopeAsync(async () => {
        const e = ckpt.file.entry('check.input');
        const o = hf.visual!.forward(Tensor.from(dev, await ckpt.file.float32('check.input'), e.shape), { tokens: false });
        const pooled = maxRel((await o.pooled.data()) as Float32Array, await ckpt.file.float32('check.trunk_pooled'));
        const feats = maxRel((await l2Normalize(o.features, -1).data()) as Float32Array, await ckpt.file.float32('check.image_features'));
        console.log(`hf 2025_10_08 layout: trunk_pooled ${pooled.toExponential(2)}, image_features ${feats.toExponential(2)}`);
        expect(pooled).toBeLessThan(OUT_TOL);
        expect(feats).toBeLessThan(OUT_TOL);
      });
    } finally {
      hf.dispose();
    }
  });

  it('hlip convert <hf-dir> <out>: the weights with the chosen config in the metadata', async () => {
    const dir = await writeSnapshot(dual.files, { 'README.md': new TextEncoder().encode('MODEL_NAME = "tiny_dual_alias"\n') });
    const out = join(root, 'converted.safetensors');
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await convert([dir, out, '--dtype', 'f16'])).toBe(0);
      expect(String(log.mock.calls[0]?.[0])).toMatch(/model tiny_dual_alias from hlip\/model_configs\/tiny_dual_alias\.json/);
    } finally {
      log.mockRestore();
    }
    const st = await readSafetensorsFile(out);
    const src = await openHfSnapshot(await nodeHfFiles(dir));
    try {
      expect(src.config.how).toBe('readme');
      expect(new Set(st.names())).toEqual(new Set(src.weights.names()));
      expect(st.metadata?.['hlip.model_name']).toBe('tiny_dual_alias');
      expect(JSON.parse(st.metadata?.['hlip.model_config'] ?? 'null')).toEqual(dual.config);
      expect(st.entry('visual.head.proj.weight').dtype).toBe('F16');
      expect(maxRel(await st.float32('visual.head.proj.weight'), await src.weights.float32('visual.head.proj.weight'))).toBeLessThan(1e-3);
    } finally {
      await st.close();
      await src.close();
    }
    // f32 through the library call keeps every byte.
    const res = await convertHfDir(dir, out, { modelName: 'tiny_dual' });
    expect(res.modelName).toBe('tiny_dual');
    const st2 = await readSafetensorsFile(out);
    try {
      expect([...(await st2.float32('text.proj.weight'))]).toEqual([...(await dual.bert.file.float32('text.proj.weight'))]);
    } finally {
      await st2.close();
    }
  });

  it('missing model.safetensors is an io error naming the file', async () => {
    const dir = await writeSnapshot(dual.files, { 'model.safetensors': null, 'pytorch_model.bin': new Uint8Array(4) });
    const err = await loadHfModel(dev, await nodeHfFiles(dir)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HlipError);
    expect((err as HlipError).kind).toBe('io');
    expect((err as HlipError).source).toBe(join(dir, 'model.safetensors'));
    expect((err as Error).message).toMatch(/missing model\.safetensors.*pytorch_model\.bin/);
    await expect(nodeHfFiles(join(dir, 'nope'))).rejects.toThrow(/nope/);
  });

  it('configs that fit the weights but build different models are ambiguous until the caller names one', async () => {
    const dir = await writeSnapshot(dual.files, { 'hlip/model_configs/tiny_dual_permuted.json': permuted() });
    const files = await nodeHfFiles(dir);
    const err = await openHfSnapshot(files).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmbiguousConfigError);
    expect((err as AmbiguousConfigError).candidates).toEqual(['tiny_dual', 'tiny_dual_alias', 'tiny_dual_permuted']);
    expect((err as Error).message).toContain(join(dir, 'model.safetensors'));
    expect((err as Error).message).toMatch(/tiny_dual = tiny_dual_alias \| tiny_dual_permuted/);
    const pick = await openHfSnapshot(files, { modelName: 'tiny_dual_permuted' });
    try {
      expect(pick.config.how).toBe('requested');
      expect(pick.config.path).toBe('hlip/model_configs/tiny_dual_permuted.json');
    } finally {
      await pick.close();
    }
    await expect(openHfSnapshot(files, { modelName: 'nope' })).rejects.toThrow(/no model config 'nope'.*available: clip_vit_base_scan_study_dualdinotxt1568, tiny_dual/);
  });

  it('no fitting config, and a shape mismatch on load or convert, name the weights file and the tensor', async () => {
    const wide = structuredClone(dual.config) as { vision_cfg: { hlip_trunk: Record<string, unknown> } };
    wide.vision_cfg.hlip_trunk['mlp_ratio'] = 2;
    const dir = await writeSnapshot(dual.files, { 'hlip/model_configs/tiny_dual.json': null, 'hlip/model_configs/tiny_dual_alias.json': null, 'hlip/model_configs/tiny_wide.json': wide });
    const files = await nodeHfFiles(dir);
    const none = await openHfSnapshot(files).catch((e: unknown) => e);
    expect((none as HlipError).kind).toBe('config');
    expect((none as Error).message).toMatch(/none of the 2 model configs fits the weights in .*model\.safetensors/);
    expect((none as Error).message).toMatch(/tiny_wide: visual\.trunk\.blocks\.0\.mlp\.fc1\.weight is \[384, 96\], the config needs \[192, 96\]/);
    const load = await loadHfModel(dev, files, { modelName: 'tiny_wide' }).catch((e: unknown) => e);
    expect(load).toBeInstanceOf(ShapeError);
    expect((load as Error).message).toContain(join(dir, 'model.safetensors'));
    expect((load as Error).message).toMatch(/'visual\.trunk\.blocks\.0\.mlp\.fc1\.weight' has shape \[384, 96\].*needs \[192, 96\]/);
    await expect(convertHfDir(dir, join(root, 'bad.safetensors'), { modelName: 'tiny_wide' })).rejects.toThrow(/model\.safetensors: does not fit the model config .*tiny_wide\.json/);
  });
});
