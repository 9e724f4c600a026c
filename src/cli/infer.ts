// `hlip infer`: per-finding zero-shot probabilities for one study with a trained model, and with
// --interpret the reference relevance map per finding as NIfTI (on each input volume's own grid, with
// its affine) and a PNG mosaic.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { HlipError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { modelGridMap, modelToVolume } from '../data/preprocess-geometry.js';
import { findingProbabilities, pipelineOf, prepareStudy, type LoadedModel, type ModelData } from '../eval/infer.js';
import { relevanceDetails } from '../eval/relevance.js';
import { relevanceMosaic } from '../eval/relevance-render.js';
import { parsePrompts, type FindingPrompt } from '../eval/zeroshot.js';
import { writeNifti } from '../io/nifti.js';
import { encodePng } from '../io/png.js';
import { readVolume } from '../io/node-volume.js';
import { reorient, type Volume } from '../io/volume.js';
import { parseOpenClipConfig } from '../models/openclip.js';
import { createNodeDevice } from '../node/gpu.js';
import { loadModelFile } from '../node/model.js';
import { numberArg, parseArgs } from './args.js';

export const INFER_USAGE = `usage: hlip infer <study folder | scan files…> --model <model.safetensors> [options]

Scores one study with a trained model: for every finding, the softmax over its (negative, positive)
prompt pair, each prompt preceded by the model's report prefix (as evaluation does). A study folder's
scans are its NIfTI files (.nii, .nii.gz) and its sub-folders (DICOM series), in name order; a folder
holding DICOM files itself is one series. Scans are repeated in order to the model's scan count.

options:
  --model <file>        model.safetensors from hlip train, a training checkpoint, or reference-named
                        safetensors (then also --config)
  --prompts <file>      prompts.json {finding: {positive, negative}} [the model file's own, if stored]
  --findings a,b        score only these findings
  --json                print {"study", "probabilities", "scans"[, "relevance"]} instead of a table
  --interpret           write the relevance map (gradient-weighted attention of the last block, class
                        token row; docs/inference.md) of every finding, or of --target, to --out:
                        <finding>.nii.gz (one file per scan: <finding>_scan<k>.nii.gz when there are
                        several) on the input volume's grid with its affine, and <finding>.png
  --target <finding>    the finding to interpret [all scored findings]
  --out <dir>           output folder for --interpret [infer-out]
  --relevance-target logit|probability
                        differentiate the positive prompt's scaled logit (the reference) or the
                        pair probability [logit]
  --config <file.json>  open_clip model config, for weights that carry none
  --tokenizer <spec>    bert-base-uncased, vocab.txt or tokenizer.json [the model file's]
  --kind ct|mri  --num-scans n  --shape D,H,W
                        override what the model file says about its input
  --dtype f32|f16       weight precision on the device [f32]`;

const SAFE = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch (e) {
    throw new HlipError('io', `cannot open: ${(e as Error).message}`, { source: p, cause: e });
  }
}

/** The scan paths of a study given as a folder or as files / series folders. */
export async function studyScans(inputs: readonly string[]): Promise<{ name: string; scans: string[] }> {
  if (!inputs.length) throw new HlipError('config', `give a study folder or scan files\n${INFER_USAGE}`);
  if (inputs.length === 1 && (await isDir(inputs[0] as string))) {
    const dir = inputs[0] as string;
    const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const nifti = entries.filter((e) => e.isFile() && /\.nii(\.gz)?$/i.test(e.name)).map((e) => join(dir, e.name));
    const series = entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
    const scans = [...nifti, ...series].sort();
    // A folder of DICOM files (no NIfTI, no sub-folders) is one series.
    return { name: basename(resolve(dir)), scans: scans.length ? scans : [dir] };
  }
  return { name: basename(resolve(inputs[0] as string)).replace(/\.nii(\.gz)?$/i, ''), scans: [...inputs] };
}

function selectFindings(all: FindingPrompt[], findings: string | undefined, source: string): FindingPrompt[] {
  if (!findings) return all;
  const want = findings.split(',').map((s) => s.trim()).filter(Boolean);
  const missing = want.filter((w) => !all.some((p) => p.name === w));
  if (missing.length) throw new HlipError('config', `${source} has no finding ${missing.map((m) => `'${m}'`).join(', ')} (it has: ${all.map((p) => p.name).join(', ')})`);
  return want.map((w) => all.find((p) => p.name === w) as FindingPrompt);
}

export interface InferOutput {
  study: string;
  scans: string[];
  probabilities: Record<string, number>;
  relevance?: Record<string, { nifti: string[]; png: string }>;
}

/** Relevance outputs of one finding: NIfTI per scan on its volume's native grid, and the mosaic. */
async function writeRelevance(m: LoadedModel, f: FindingPrompt, study: { images: Float32Array; shape: [number, number, number, number]; scans: number[] }, native: Volume[], rpi: Volume[], out: string, target: 'logit' | 'probability'): Promise<{ nifti: string[]; png: string }> {
  const r = await relevanceDetails(m, study.images, study.shape, f, { target });
  const [S, D, H, W] = study.shape;
  const pipeline = pipelineOf(m.data);
  const nifti: string[] = [];
  for (let k = 0; k < S; k++) {
    const v = study.scans[k] as number;
    const onModel = r.map.subarray(k * D * H * W, (k + 1) * D * H * W);
    const vol = rpi[v] as Volume;
    const onRpi = modelToVolume(onModel, [D, H, W], vol, modelGridMap(vol, pipeline, [D, H, W]));
    const nat = native[v] as Volume;
    // Back to the file's own voxel order; the written affine is the input's, unchanged.
    const data = reorient({ ...vol, data: onRpi }, nat.orientation).data;
    const path = join(out, S === 1 ? `${SAFE(f.name)}.nii.gz` : `${SAFE(f.name)}_scan${k}.nii.gz`);
    await writeFile(path, await writeNifti({ ...nat, data, frames: 1, frame: 0 }, { gzip: true, description: `hlip relevance: ${f.name}`.slice(0, 79) }));
    nifti.push(path);
  }
  const mosaic = relevanceMosaic(study.images, r.map, study.shape, { patchDepth: m.built.visual!.cfg.patchSize[0] });
  const png = join(out, `${SAFE(f.name)}.png`);
  await writeFile(png, await encodePng(mosaic.rgb, mosaic.width, mosaic.height));
  return { nifti, png };
}

/** `env.device`: run on this device (tests) instead of creating one. */
export async function inferCommand(args: string[], env: { device?: Device } = {}): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(INFER_USAGE);
    return 0;
  }
  const p = parseArgs(args, ['model', 'prompts', 'findings', 'target', 'out', 'config', 'tokenizer', 'kind', 'num-scans', 'shape', 'dtype', 'relevance-target'], ['json', 'interpret'], INFER_USAGE);
  const modelPath = p.values['model'];
  if (!modelPath) throw new HlipError('config', `--model <file> is required\n${INFER_USAGE}`);
  const data: Partial<ModelData> = {};
  const kind = p.values['kind'];
  if (kind !== undefined) {
    if (kind !== 'ct' && kind !== 'mri') throw new HlipError('config', `--kind must be ct or mri, got '${kind}'`);
    data.kind = kind;
  }
  if (p.values['num-scans'] !== undefined) {
    const n = numberArg('num-scans', p.values['num-scans']);
    if (!Number.isInteger(n) || n < 1) throw new HlipError('config', `--num-scans must be a positive integer, got ${n}`);
    data.numScans = n;
  }
  if (p.values['shape'] !== undefined) {
    const s = p.values['shape'].split(/[,x×]/).map((v) => numberArg('shape', v));
    if (s.length !== 3 || !s.every((n) => Number.isInteger(n) && n > 0)) throw new HlipError('config', `--shape must be D,H,W, got '${p.values['shape']}'`);
    data.shape = s as [number, number, number];
  }
  const dtype = p.values['dtype'] ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw new HlipError('config', `--dtype must be f32 or f16, got '${dtype}'`);
  const relTarget = p.values['relevance-target'] ?? 'logit';
  if (relTarget !== 'logit' && relTarget !== 'probability') throw new HlipError('config', `--relevance-target must be logit or probability, got '${relTarget}'`);
  const readJson = async (path: string): Promise<unknown> => {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as unknown;
    } catch (e) {
      throw new HlipError('config', (e as Error).message, { source: path, cause: e });
    }
  };
  const config = p.values['config'] !== undefined ? parseOpenClipConfig(await readJson(p.values['config']), p.values['config']) : undefined;
  const tok = p.values['tokenizer'];
  const tokenizerSpec = tok === undefined ? undefined : tok === 'bert-base-uncased' ? tok : /\.json$/i.test(tok) ? { tokenizer_json: resolve(tok) } : { vocab: resolve(tok) };

  const { name, scans } = await studyScans(p.positional);
  const native = await Promise.all(scans.map((s) => readVolume(s, { orientation: 'native' })));
  // As the dataset reads them (RPI), for preprocessing.
  const rpi = native.map((v) => reorient(v, 'RPI'));

  const dev = env.device ?? (await createNodeDevice());
  const m = await loadModelFile(dev, modelPath, { dtype, data, ...(config ? { config } : {}), ...(tokenizerSpec ? { tokenizerSpec } : {}) });
  try {
    let prompts: FindingPrompt[];
    let promptSource: string;
    if (p.values['prompts'] !== undefined) {
      prompts = parsePrompts(await readJson(p.values['prompts']), p.values['prompts']);
      promptSource = p.values['prompts'];
    } else if (m.prompts) {
      prompts = m.prompts;
      promptSource = modelPath;
    } else throw new HlipError('config', `${modelPath} stores no finding prompts: give --prompts prompts.json ({finding: {positive, negative}}; hlip synth writes one)`);
    prompts = selectFindings(prompts, p.values['findings'], promptSource);
    const study = prepareStudy(rpi, m.data);
    const probabilities = await findingProbabilities(m, study.images, study.shape, prompts);
    const out: InferOutput = { study: name, scans: study.scans.map((i) => scans[i] as string), probabilities };
    if (p.flags.has('interpret')) {
      const dir = resolve(p.values['out'] ?? 'infer-out');
      await mkdir(dir, { recursive: true });
      const targets = p.values['target'] !== undefined ? selectFindings(prompts, p.values['target'], promptSource) : prompts;
      out.relevance = {};
      for (const f of targets) out.relevance[f.name] = await writeRelevance(m, f, study, native, rpi, dir, relTarget);
    } else if (p.values['target'] !== undefined || p.values['out'] !== undefined) {
      throw new HlipError('config', '--target and --out go with --interpret');
    }
    if (p.flags.has('json')) console.log(JSON.stringify(out));
    else {
      const w = Math.max(7, ...prompts.map((f) => f.name.length));
      console.log(`study ${name}: ${out.scans.length} scan(s) ${out.scans.map((s) => basename(s)).join(', ')}; model ${m.source}`);
      console.log(`${'finding'.padEnd(w)}  probability`);
      for (const f of prompts) console.log(`${f.name.padEnd(w)}  ${(probabilities[f.name] as number).toFixed(4)}`);
      for (const [f, r] of Object.entries(out.relevance ?? {})) console.log(`relevance ${f}: ${[...r.nifti, r.png].join(', ')}`);
    }
    return 0;
  } finally {
    m.dispose();
  }
}
