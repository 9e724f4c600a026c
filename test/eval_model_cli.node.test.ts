// `hlip eval --model --data` and `hlip embed` end to end on tiny synthetic copies of the Pub-Brain-5 and
// CT-RATE public layouts with a tiny random model file (buildOpenClip + the metadata train-run writes):
// scores equal a direct computation through the inference API and the open_clip classifier, a run
// stopped after one chunk and resumed gives the same score file as an uninterrupted run, two shards
// merged give the same file as one run, and `hlip embed` writes what embedStudies computes.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { embed } from '../src/cli/embed.js';
import { evalCommand } from '../src/cli/eval.js';
import { openModel } from '../src/cli/eval-model.js';
import type { Device } from '../src/gpu/device.js';
import { CT_RATE_CLASSES, PUB_BRAIN_5_CLASSNAMES_2026, PUB_BRAIN_5_HEADERS, PUB_BRAIN_5_TEMPLATES_2026 } from '../src/eval/benchmarks.js';
import { embedStudies, findingProbabilities, prepareStudy, type LoadedModel } from '../src/eval/infer.js';
import { findScans, readScan } from '../src/eval/layouts/index.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { writeNifti } from '../src/io/nifti.js';
import type { Volume } from '../src/io/volume.js';
import { buildOpenClip, type OpenClipModelConfig } from '../src/models/openclip.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { nodeDataTree } from '../src/node/data-tree.js';
import { getDevice } from './helpers/device.js';
import { reinit } from './helpers/tiny_clip.js';

const trunk = { patch_size: [2, 4, 4], embed_dim: 12, depth: 2, num_heads: 2, max_num_scans: 4, slice_attn_indexes: [0], study_attn_indexes: [1] };
const text = {
  hf_model_name: 'tiny-bert', hf_tokenizer_name: 'bert-base-uncased', context_length: 24,
  hf_model_config: { vocab_size: 30522, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 24, type_vocab_size: 2 },
};
const MRI_CFG: OpenClipModelConfig = { embed_dim: 8, vision_cfg: { hlip_trunk: { img_size: [6, 12, 12], ...trunk } }, text_cfg: text };
const CT_CFG: OpenClipModelConfig = { embed_dim: 8, vision_cfg: { hlip_trunk: { img_size: [4, 8, 8], ...trunk } }, text_cfg: text };

/** model.safetensors as src/cli/train-run.ts writes it, random (seeded) weights. */
async function modelFile(dev: Device, cfg: OpenClipModelConfig, seed: number, data: Record<string, unknown>): Promise<Uint8Array> {
  const built = buildOpenClip(dev, cfg);
  try {
    reinit(built.model, seed);
    const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
    for (const [name, t] of built.model.stateDict()) tensors.push([name, { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array }]);
    return writeSafetensors(tensors, { format: 'pt', 'hlip.model_config': JSON.stringify(cfg), 'hlip.tokenizer': JSON.stringify('bert-base-uncased'), 'hlip.data': JSON.stringify(data) });
  } finally {
    built.model.dispose();
  }
}

/** Deterministic noise in [0, 1). */
const rnd = (a: number, b: number) => {
  const x = Math.sin(a * 12.9898 + b * 78.233) * 43758.5453;
  return x - Math.floor(x);
};

function volume(shape: [number, number, number], spacing: [number, number, number], f: (n: number) => number): Volume {
  const [D, H, W] = shape;
  const data = Float32Array.from({ length: D * H * W }, (_, n) => f(n));
  return { data, dims: [W, H, D], spacing: [spacing[2], spacing[1], spacing[0]], affine: [spacing[2], 0, 0, 0, 0, spacing[1], 0, 0, 0, 0, spacing[0], 0, 0, 0, 0, 1], orientation: 'RAS', source: '<test>', frames: 1, frame: 0, affineSource: 'derived' };
}

async function put(path: string, bytes: Uint8Array | string) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

let dir: string;
let dev: Device;
const MODEL = () => join(dir, 'mri-model.safetensors');
const CT_MODEL = () => join(dir, 'ct-model.safetensors');
const PB5 = () => join(dir, 'pb5');
const CT = () => join(dir, 'ctrate');

// Pub-Brain-5: 8 studies with 1–3 scans of different sizes; labels with both classes in every task.
const STUDIES: [string, number[], number][] = [
  ['open_bhb/sub-1', [1, 0, 0, 0, 0], 1], ['open_bhb/sub-2', [1, 0, 0, 0, 0], 2], ['stroke/sub-a', [0, 1, 0, 0, 0], 2], ['stroke/sub-b', [0, 1, 0, 0, 0], 1],
  ['brats23/train/adult_glioma/BraTS-GLI-1', [0, 0, 1, 0, 0], 3], ['brats23/train/adult_meningioma/BraTS-MEN-1', [0, 0, 0, 1, 0], 2],
  ['nyu_mets/NYU_Mets_1', [0, 0, 0, 0, 1], 1], ['brats23/train/adult_metastasis/BraTS-MET-1', [0, 0, 0, 0, 1], 3],
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hlip-evalmodel-'));
  dev = await getDevice();
  await writeFile(MODEL(), await modelFile(dev, MRI_CFG, 7, { kind: 'mri', shape: [6, 12, 12], num_scans: 2, report_prefix: null }));
  await writeFile(CT_MODEL(), await modelFile(dev, CT_CFG, 8, { kind: 'ct', shape: [4, 8, 8], num_scans: 1, report_prefix: null }));
  for (const [s, [study, , n]] of STUDIES.entries()) {
    for (let k = 0; k < n; k++) {
      const shape: [number, number, number] = [5 + k, 9 + s % 3, 11];
      const v = volume(shape, [2, 1, 1], (i) => 100 * rnd(s * 10 + k, i) + (i % 11) * s);
      await put(join(PB5(), study, `scan${k}.nii.gz`), await writeNifti(v, { gzip: true }));
    }
  }
  await put(join(PB5(), 'brats23/train/adult_glioma/BraTS-GLI-1/seg.nii.gz'), await writeNifti(volume([5, 9, 11], [2, 1, 1], () => 1), { gzip: true }));
  await put(join(PB5(), 'pub_brain_5.csv'), ['study,' + PUB_BRAIN_5_HEADERS.join(','), ...STUDIES.map(([s, y]) => `/data/pub_brain_5/${s},${y.join(',')}`)].join('\n') + '\n');
  // CT-RATE: 4 volumes in HU, 3 mm slices.
  const names = ['valid_1_a_1', 'valid_1_a_2', 'valid_2_a_1', 'valid_3_b_1'];
  for (const [r, nm] of names.entries()) {
    const v = volume([3, 10, 9], [3, 1, 1], (i) => -1000 + 1200 * rnd(r, i));
    const [, a, b] = /^((\w+?_\d+)_\w)_\d+$/.exec(nm)!;
    await put(join(CT(), 'valid_fixed', b!, a!, `${nm}.nii.gz`), await writeNifti(v, { gzip: true }));
  }
  await put(join(CT(), 'valid_labels.csv'), ['VolumeName,' + CT_RATE_CLASSES.join(','), ...names.map((n, r) => `${n}.nii.gz,${CT_RATE_CLASSES.map((_, c) => ((r + c) % 3 === 0 ? 1 : 0)).join(',')}`)].join('\n') + '\n');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs a command in-process on the shared device; returns stdout and the exit code. */
async function run(cmd: typeof evalCommand, args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const code = await cmd(args, { device: dev });
    return { code, out: out.join('\n') };
  } finally {
    vi.restoreAllMocks();
  }
}

async function runJson(cmd: typeof evalCommand, args: string[]): Promise<Record<string, any>> {
  const r = await run(cmd, [...args, '--json', '--quiet']);
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as Record<string, any>;
}

const pb5 = (out: string, ...more: string[]) => ['--benchmark', 'pub-brain-5', '--protocol', '2026', '--data', PB5(), '--model', MODEL(), '--out', out, ...more];
const read = (p: string) => readFile(p, 'utf8');

/** The model input of a Pub-Brain-5 study folder as the evaluation builds it (every scan). */
async function studyInput(m: LoadedModel, study: string) {
  const tree = nodeDataTree(PB5());
  const scans = await findScans(tree, study);
  const vols = await Promise.all(scans.map((s) => readScan(tree, s, { orientation: 'RPI' })));
  return prepareStudy(vols, { ...m.data, pipeline: { kind: 'mri' }, numScans: vols.length });
}

describe('hlip eval --model on Pub-Brain-5 (public layout)', () => {
  let full: string;

  it('writes the score file and metrics; scores equal the open_clip classifier on embedStudies', async () => {
    const out = join(dir, 'o-full');
    const r = await runJson(evalCommand, pb5(out, '--chunk', '3'));
    expect(r.benchmark).toBe('pub-brain-5');
    expect(r.protocol).toBe('2026');
    expect(r.n_cases).toBe(8);
    expect(r.labels).toBe(join(PB5(), 'pub_brain_5.csv'));
    expect(Object.keys(r.per_class)).toEqual(['Stroke', 'Glioma', 'Meningioma', 'Metastasis']);
    expect(r.tasks.disease.n_cases).toBe(8);
    expect(r.run.scoring).toBe('scaled-logits');
    full = await read(join(out, 'logits_2026.csv'));
    const lines = full.trim().split('\n');
    expect(lines[0]).toBe('study,Normal,Stroke,Glioma,Meningioma,Metastasis');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(STUDIES.map(([s]) => `/data/pub_brain_5/${s}`));
    expect(JSON.parse(await read(join(out, 'results_2026.json')))).toEqual(r);
    // The same metrics from the score file through `hlip eval --scores` (the shared metric code).
    const again = await runJson(evalCommand, ['--benchmark', 'pub-brain-5', '--protocol', '2026', '--score-kind', 'logits', '--scores', join(out, 'logits_2026.csv'), '--labels', join(PB5(), 'pub_brain_5.csv')]);
    expect(again.per_class).toEqual(r.per_class);
    expect(again.tasks).toEqual(r.tasks);
    // Direct: exp(s) · f · W with W from CustomTextCLIP.zeroShotClassifier (templates averaged).
    const m = await openModel(dev, { model: MODEL() });
    try {
      const W = m.model.zeroShotClassifier(m.tokenizer, PUB_BRAIN_5_CLASSNAMES_2026, PUB_BRAIN_5_TEMPLATES_2026);
      const w = (await W.data()) as Float32Array;
      W.dispose();
      const s = Math.exp(await m.model.logitScaleParam.item());
      for (const k of [0, 4, 7]) {
        const x = await studyInput(m, STUDIES[k]![0]);
        expect(x.shape[0]).toBe(STUDIES[k]![2]); // every scan of the study
        const [f] = await embedStudies(m, [x.images], x.shape);
        const row = lines[k + 1]!.split(',').slice(1).map(Number);
        for (let c = 0; c < 5; c++) {
          let dot = 0;
          for (let e = 0; e < 8; e++) dot += f![e]! * w[e * 5 + c]!;
          expect(Math.abs(row[c]! - s * dot)).toBeLessThan(1e-5 * s);
        }
      }
    } finally {
      m.dispose();
    }
  });

  it('stopped after one chunk and resumed gives the same score file as an uninterrupted run', async () => {
    const out = join(dir, 'o-resume');
    const a = await runJson(evalCommand, pb5(out, '--chunk', '3', '--max-chunks', '1'));
    expect(a).toMatchObject({ status: 'partial', embedded: 3, cached: 0, remaining: 5 });
    expect(existsSync(join(out, 'logits_2026.csv'))).toBe(false);
    // A write that a kill interrupted leaves a temporary file: it is ignored and removed.
    await writeFile(join(a.cache, `.emb-s0of1-000001.safetensors.x1.tmp`), 'partial');
    const b = await runJson(evalCommand, pb5(out, '--chunk', '3', '--max-chunks', '1'));
    expect(b).toMatchObject({ status: 'partial', embedded: 3, cached: 3, remaining: 2 });
    const chunks = (await readdir(a.cache)).filter((f) => f.endsWith('.safetensors'));
    expect(chunks).toEqual(['emb-s0of1-000000.safetensors', 'emb-s0of1-000001.safetensors']);
    expect((await readdir(a.cache)).some((f) => f.endsWith('.tmp'))).toBe(false);
    const c = await runJson(evalCommand, pb5(out, '--chunk', '3'));
    expect(c.n_cases).toBe(8);
    expect(await read(join(out, 'logits_2026.csv'))).toBe(full);
    // Everything cached: a rerun embeds nothing and writes the same file.
    const d = await run(evalCommand, pb5(out, '--quiet'));
    expect(d.out).toMatch(/^Pub-Brain-5, 2026 protocol: 8 cases/);
    expect(d.out).toContain(`scores: ${join(out, 'logits_2026.csv')}`);
    expect(await read(join(out, 'logits_2026.csv'))).toBe(full);
  });

  it('two shards merged give the same score file as one run; --merge rescoring needs no re-encoding', async () => {
    const out = join(dir, 'o-shards');
    const s0 = await runJson(evalCommand, pb5(out, '--shard', '0/2'));
    expect(s0).toMatchObject({ status: 'waiting', shard: '0/2', embedded: 4, pending_shards: [1] });
    await expect(evalCommand(pb5(out, '--merge', '--shard', '0/2', '--quiet'), { device: dev })).rejects.toThrow(/cannot merge: shard\(s\) 1\/2 .* are not complete/);
    const s1 = await runJson(evalCommand, pb5(out, '--shard', '1/2'));
    expect(s1.n_cases).toBe(8); // the last shard merges
    expect(await read(join(out, 'logits_2026.csv'))).toBe(full);
    const m = await runJson(evalCommand, pb5(out, '--merge', '--shard', '0/2'));
    expect(m.per_class).toEqual(s1.per_class);
    // Other prompts (the 2025 set) from the same cache: nothing is embedded again.
    const y = await runJson(evalCommand, ['--benchmark', 'pub-brain-5', '--protocol', '2025', '--data', PB5(), '--model', MODEL(), '--out', out, '--merge', '--shard', '0/2']);
    expect(y.protocol).toBe('2025');
    expect(Object.keys(y.tasks)).toEqual(['tumor', 'disease']);
    const l25 = (await read(join(out, 'logits_2025.csv'))).trim().split('\n');
    expect(l25.length).toBe(9);
    expect(l25[1]).not.toBe(full.split('\n')[1]);
  });

  it('hlip embed writes the study embeddings embedStudies computes and the prompt classifier', async () => {
    const out = join(dir, 'emb.safetensors');
    const r = await runJson(embed, ['--model', MODEL(), '--data', PB5(), '--benchmark', 'pub-brain-5', '--protocol', '2026', '--out', out]);
    expect(r).toEqual({ out, studies: 8, prompts: 5, dim: 8 });
    const f = parseSafetensors(new Uint8Array(await readFile(out)), out);
    expect(f.entry('study_embeddings').shape).toEqual([8, 8]);
    expect(f.entry('prompt_embeddings').shape).toEqual([5, 8]);
    expect(JSON.parse(f.metadata!['hlip.study_keys']!)).toEqual(STUDIES.map(([s]) => `/data/pub_brain_5/${s}`));
    expect(JSON.parse(f.metadata!['hlip.prompt_names']!)).toEqual([...PUB_BRAIN_5_HEADERS]);
    expect(JSON.parse(f.metadata!['hlip.prompt_texts']!)[1]).toEqual(PUB_BRAIN_5_TEMPLATES_2026.map((t) => t('acute stroke')));
    const E = f.float32Sync('study_embeddings');
    const P = f.float32Sync('prompt_embeddings');
    const m = await openModel(dev, { model: MODEL() });
    try {
      for (const k of [1, 4]) {
        const x = await studyInput(m, STUDIES[k]![0]);
        const [e] = await embedStudies(m, [x.images], x.shape);
        expect(Array.from(E.subarray(k * 8, k * 8 + 8))).toEqual(Array.from(e!));
      }
      const W = m.model.zeroShotClassifier(m.tokenizer, PUB_BRAIN_5_CLASSNAMES_2026, PUB_BRAIN_5_TEMPLATES_2026);
      const w = (await W.data()) as Float32Array;
      W.dispose();
      for (let c = 0; c < 5; c++) for (let e = 0; e < 8; e++) expect(Math.abs(P[c * 8 + e]! - w[e * 5 + c]!)).toBeLessThan(1e-6);
      expect(Number(f.metadata!['hlip.logit_scale'])).toBeCloseTo(Math.exp(await m.model.logitScaleParam.item()), 10);
    } finally {
      m.dispose();
    }
  });

  it('hlip embed on study folders with prompts.json: the pair softmax of the file equals findingProbabilities', async () => {
    const prompts = join(dir, 'prompts.json');
    await writeFile(prompts, JSON.stringify({ mass: { positive: 'a mass is present', negative: 'no mass' }, bleed: { positive: 'bleed', negative: 'no bleed' } }));
    const out = join(dir, 'emb-folders.safetensors');
    const study = join(PB5(), STUDIES[5]![0]);
    await runJson(embed, ['--model', MODEL(), '--prompts', prompts, '--out', out, study]);
    const f = parseSafetensors(new Uint8Array(await readFile(out)), out);
    expect(JSON.parse(f.metadata!['hlip.prompt_names']!)).toEqual(['mass/negative', 'mass/positive', 'bleed/negative', 'bleed/positive']);
    expect(JSON.parse(f.metadata!['hlip.study_scans']!)).toEqual([['scan0', 'scan1']]);
    const e = f.float32Sync('study_embeddings');
    const P = f.float32Sync('prompt_embeddings');
    const s = f.float32Sync('logit_scale')[0]!;
    const m = await openModel(dev, { model: MODEL() });
    try {
      const tree = nodeDataTree(study);
      const vols = await Promise.all((await findScans(tree, '')).map((x) => readScan(tree, x, {})));
      const x = prepareStudy(vols, m.data); // the model's own scan count and pipeline
      const p = await findingProbabilities(m, x.images, x.shape, [{ name: 'mass', positive: 'a mass is present', negative: 'no mass' }, { name: 'bleed', positive: 'bleed', negative: 'no bleed' }]);
      const dot = (k: number) => Array.from(e).reduce((a, v, i) => a + v * P[k * 8 + i]!, 0);
      expect(Math.abs(1 / (1 + Math.exp(s * (dot(0) - dot(1)))) - p['mass']!)).toBeLessThan(1e-5);
      expect(Math.abs(1 / (1 + Math.exp(s * (dot(2) - dot(3)))) - p['bleed']!)).toBeLessThan(1e-5);
    } finally {
      m.dispose();
    }
  });
});

describe('hlip eval --model on CT-RATE (2025 prompt pairs)', () => {
  it('pair-softmax probabilities per class and the 2025 metrics', async () => {
    const out = join(dir, 'o-ct');
    const r = await runJson(evalCommand, ['--benchmark', 'ct-rate', '--data', CT(), '--model', CT_MODEL(), '--out', out]);
    expect(r.protocol).toBe('2025');
    expect(r.n_cases).toBe(4);
    expect(r.run.scoring).toBe('pair-softmax');
    expect(Object.keys(r.per_class)).toEqual([...CT_RATE_CLASSES]);
    expect(Object.keys(r.per_class.Emphysema)).toContain('balanced_accuracy');
    const lines = (await read(join(out, 'logits_volume.csv'))).trim().split('\n');
    expect(lines[0]).toBe('VolumeName,' + CT_RATE_CLASSES.join(','));
    expect(lines[1]!.startsWith('valid_1_a_1.nii.gz,')).toBe(true);
    for (const l of lines.slice(1)) for (const v of l.split(',').slice(1).map(Number)) expect(v > 0 && v < 1).toBe(true);
    // Missing label file / data root are typed errors naming the path.
    await expect(evalCommand(['--benchmark', 'rad-chestct', '--data', CT(), '--model', CT_MODEL(), '--quiet'], { device: dev })).rejects.toThrow(/no label file found under .*rad_chestct_labels\.csv/);
    await expect(evalCommand(['--benchmark', 'ct-rate', '--data', join(dir, 'nope'), '--model', CT_MODEL()], { device: dev })).rejects.toThrow(/nope: the data root is not a folder/);
    await expect(evalCommand(['--benchmark', 'ct-rate', '--data', CT()], { device: dev })).rejects.toThrow(/needs both --data <root> and --model <file>/);
  });
});
