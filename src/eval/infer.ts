// Inference with a trained HLIP model (browser-safe): load a model file, preprocess a study the way
// evaluation does, embed it, score prompt pairs, and (./relevance.ts) the reference relevance map.
// The contract other code relies on is /work/notes/api_infer.md (loadModel, prepareStudy,
// embedStudies, findingProbabilities, relevanceMap).
import { DTypeError, FormatError, HlipError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { preprocessScan, sampleScans, type ScanPipeline } from '../data/dataset.js';
import { defaultReportPrefix } from '../data/report.js';
import { openSafetensors, type SafetensorsFile } from '../io/safetensors.js';
import type { ByteInput } from '../io/source.js';
import type { Volume } from '../io/volume.js';
import type { CustomTextCLIP } from '../models/clip.js';
import { buildOpenClip, openClipShapeMismatch, parseOpenClipConfig, type OpenClipModel, type OpenClipModelConfig } from '../models/openclip.js';
import type { TextTokenizerBase } from '../models/tokenizer.js';
import { StateDictError, type HostTensor } from '../nn/module.js';
import { cast } from '../ops/cast.js';
import { noGrad, scope, withoutScope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { CHECKPOINT_FORMAT, decodeCheckpoint } from '../train/checkpoint.js';
import { pairProbability, type FindingPrompt } from './zeroshot.js';

export type { FindingPrompt };

/** What the model was trained on: how a study becomes its input. */
export interface ModelData {
  kind: 'ct' | 'mri';
  /** Model grid of one scan [D, H, W]. */
  shape: [number, number, number];
  /** Scans per study (sampled as evaluation does). */
  numScans: number;
  /** Text before every prompt (the training report prefix); null: the default for `kind`. */
  reportPrefix: string | null;
  /** Scan preprocessing; default the reference pipeline of `kind`. */
  pipeline?: ScanPipeline;
}

/** Resolves a tokenizer spec ('bert-base-uncased', {vocab}, {tokenizer_json}, a Hugging Face name…). */
export type TokenizerResolver = (spec: unknown, contextLength: number) => Promise<TextTokenizerBase>;

export interface LoadedModel {
  model: CustomTextCLIP;
  config: OpenClipModelConfig;
  tokenizer: TextTokenizerBase;
  data: ModelData;
  /** File name, for messages. */
  source: string;
  /** Weight storage on the device. */
  dtype: 'f32' | 'f16';
  /** The built towers (visual, text, context length). */
  built: OpenClipModel;
  /** Tensors of the file the model does not have (ignored). */
  unexpected: string[];
  /** Finding prompts stored in the file ('hlip.prompts' metadata), if any. */
  prompts: FindingPrompt[] | null;
  dispose(): void;
}

export interface LoadModelOptions {
  /** Label for errors (default: the File's name or '<buffer>'). */
  name?: string;
  tokenizer: TokenizerResolver;
  /** open_clip model config for a file that carries none (reference-named weights). */
  config?: OpenClipModelConfig;
  /** Overrides of the file's data description (or the defaults when it has none). */
  data?: Partial<ModelData>;
  /** Tokenizer spec overriding the file's. */
  tokenizerSpec?: unknown;
  /** 'f16' keeps weights (and activations) in half precision: needs shader-f16 (not in SwiftShader). */
  dtype?: 'f32' | 'f16';
  /** Host bytes per upload batch (default 64 MiB): bounds host memory while loading. */
  batchBytes?: number;
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

function parseJsonMeta(file: SafetensorsFile, key: string): unknown {
  const raw = file.metadata?.[key];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch (e) {
    throw new FormatError(file.source.name, `metadata '${key}' is not valid JSON: ${(e as Error).message}`, e);
  }
}

/** Tensors by model name, read on demand (lazy file reads, or an already decoded checkpoint). */
interface WeightSource {
  shapes: Map<string, readonly number[]>;
  read(name: string): Promise<Float32Array>;
}

function fileWeights(file: SafetensorsFile): WeightSource {
  // DDP checkpoints converted as-is carry 'module.' on every key (spec §8).
  const names = file.names();
  const strip = names.length > 0 && names.every((n) => n.startsWith('module.')) ? 'module.'.length : 0;
  const shapes = new Map<string, readonly number[]>();
  const fileName = new Map<string, string>();
  for (const n of names) {
    shapes.set(n.slice(strip), file.entry(n).shape);
    fileName.set(n.slice(strip), n);
  }
  return { shapes, read: (n) => file.float32(fileName.get(n) as string) };
}

function mapWeights(m: Map<string, HostTensor>): WeightSource {
  return { shapes: new Map([...m].map(([k, v]) => [k, v.shape])), read: async (n) => (m.get(n) as HostTensor).data };
}

function parseData(json: unknown, source: string): Partial<ModelData> {
  const d = record(json);
  const out: Partial<ModelData> = {};
  if (d['kind'] !== undefined) {
    if (d['kind'] !== 'ct' && d['kind'] !== 'mri') throw new FormatError(source, `data kind must be 'ct' or 'mri', got ${JSON.stringify(d['kind'])}`);
    out.kind = d['kind'];
  }
  const shape = d['shape'];
  if (shape !== undefined && shape !== null) {
    if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n > 0)) throw new FormatError(source, `data shape must be [D, H, W], got ${JSON.stringify(shape)}`);
    out.shape = shape as [number, number, number];
  }
  if (d['num_scans'] !== undefined) {
    if (!Number.isInteger(d['num_scans']) || (d['num_scans'] as number) < 1) throw new FormatError(source, `data num_scans must be a positive integer, got ${JSON.stringify(d['num_scans'])}`);
    out.numScans = d['num_scans'] as number;
  }
  if (typeof d['report_prefix'] === 'string' || d['report_prefix'] === null) out.reportPrefix = d['report_prefix'] as string | null;
  if (d['pipeline'] !== undefined && d['pipeline'] !== null) out.pipeline = d['pipeline'] as ScanPipeline;
  return out;
}

function parsePromptsMeta(json: unknown, source: string): FindingPrompt[] | null {
  if (json === undefined) return null;
  const out: FindingPrompt[] = [];
  for (const [name, v] of Object.entries(record(json))) {
    const p = record(v);
    if (typeof p['positive'] !== 'string' || typeof p['negative'] !== 'string') throw new FormatError(source, `metadata 'hlip.prompts': finding '${name}' needs string 'positive' and 'negative'`);
    out.push({ name, positive: p['positive'], negative: p['negative'] });
  }
  return out.length ? out : null;
}

/**
 * Loads a model file: our `model.safetensors` (metadata 'hlip.model_config', 'hlip.tokenizer',
 * 'hlip.data', optionally 'hlip.prompts'), a training checkpoint (src/train/checkpoint.ts; the run
 * config inside gives model, tokenizer and data), or reference-named safetensors (a `module.` prefix
 * is stripped) with `opts.config`. Shapes are checked before anything is uploaded; weights go up in
 * batches so the host never holds the whole model twice. The model is in eval mode.
 */
export async function loadModel(dev: Device, input: ByteInput, opts: LoadModelOptions): Promise<LoadedModel> {
  const file = await openSafetensors(input, opts.name);
  const src = file.source.name;
  let weights: WeightSource;
  let config: unknown;
  let tokSpec: unknown;
  let data: Partial<ModelData>;
  if (file.metadata?.['format'] === CHECKPOINT_FORMAT) {
    const c = await decodeCheckpoint(file);
    const run = record(c.config);
    weights = mapWeights(c.model);
    config = opts.config ?? run['model'];
    tokSpec = run['tokenizer'];
    data = parseData(run['data'], src);
  } else {
    weights = fileWeights(file);
    config = opts.config ?? parseJsonMeta(file, 'hlip.model_config');
    tokSpec = parseJsonMeta(file, 'hlip.tokenizer');
    data = parseData(parseJsonMeta(file, 'hlip.data'), src);
  }
  if (config === undefined || config === null) throw new HlipError('config', 'the file carries no model config (metadata hlip.model_config): pass one (--config)', { source: src });
  const cfg = parseOpenClipConfig(config, `${src}: model config`);
  const prompts = parsePromptsMeta(parseJsonMeta(file, 'hlip.prompts'), src);
  const mismatch = openClipShapeMismatch(cfg, weights.shapes);
  if (mismatch) throw new ShapeError(`${src}: ${mismatch}`);
  const dtype = opts.dtype ?? 'f32';
  if (dtype === 'f16' && !dev.caps.f16) throw new DTypeError(`${src}: f16 weights need the shader-f16 feature, which this adapter lacks (load in f32)`);

  const built = buildOpenClip(dev, cfg, { shapes: weights.shapes });
  try {
    const model = built.model;
    const own = model.stateDict();
    // Frozen sin-cos tables may be absent (they are recomputed); anything else must be there.
    const missing = [...own.keys()].filter((k) => !weights.shapes.has(k) && !/(^|\.)(spatial_posemb|sequential_posemb)$/.test(k));
    if (missing.length) throw new StateDictError(`${src}: ${missing.length} model tensors are missing from the file (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''})`, missing, []);
    const unexpected = [...weights.shapes.keys()].filter((k) => !own.has(k));
    for (const [k, t] of own) {
      const s = weights.shapes.get(k);
      if (s && (s.length !== t.shape.length || s.some((d, i) => d !== t.shape[i]))) throw new ShapeError(`${src}: '${k}' has shape [${s.join(', ')}], the model needs [${t.shape.join(', ')}]`);
    }
    const total = [...own].reduce((a, [k, t]) => a + (weights.shapes.has(k) ? t.size * 4 : 0), 0);
    const limit = opts.batchBytes ?? 64 * 2 ** 20;
    let batch = new Map<string, HostTensor>();
    let bytes = 0;
    let done = 0;
    const flush = () => {
      if (batch.size) model.loadStateDict(batch, { strict: false });
      done += bytes;
      batch = new Map();
      bytes = 0;
      opts.onProgress?.(done, total);
    };
    for (const [k, t] of own) {
      if (!weights.shapes.has(k)) continue;
      batch.set(k, { shape: t.shape, data: await weights.read(k) });
      bytes += t.size * 4;
      if (bytes >= limit) flush();
    }
    flush();
    // Half precision end to end (reductions accumulate in f32 inside the kernels).
    if (dtype === 'f16') model.mapTensors((t) => noGrad(() => cast(t, 'f16')));
    model.eval();
    const spec = opts.tokenizerSpec ?? tokSpec ?? built.tokenizerName;
    const tokenizer = await opts.tokenizer(spec ?? null, built.contextLength);
    const visual = built.visual;
    if (!visual) throw new HlipError('config', 'the model has no image tower', { source: src });
    const d: ModelData = {
      kind: opts.data?.kind ?? data.kind ?? (visual.cfg.maxNumScans > 1 ? 'mri' : 'ct'),
      shape: opts.data?.shape ?? data.shape ?? [...visual.cfg.imgSize],
      numScans: opts.data?.numScans ?? data.numScans ?? 1,
      reportPrefix: opts.data?.reportPrefix !== undefined ? opts.data.reportPrefix : (data.reportPrefix ?? null),
    };
    const pipeline = opts.data?.pipeline ?? data.pipeline;
    if (pipeline) d.pipeline = pipeline;
    const classifiers = new Map<string, Tensor>();
    classifierCache.set(model, classifiers);
    return {
      model, config: cfg, tokenizer, data: d, source: src, dtype, built, unexpected, prompts,
      dispose: () => {
        for (const t of classifiers.values()) t.dispose();
        classifiers.clear();
        model.dispose();
      },
    };
  } catch (e) {
    built.model.dispose();
    throw e;
  }
}

const classifierCache = new WeakMap<CustomTextCLIP, Map<string, Tensor>>();

/** The scan preprocessing of `data` (its own, else the reference pipeline of its kind). */
export function pipelineOf(data: ModelData): ScanPipeline {
  return data.pipeline ?? (data.kind === 'mri' ? { kind: 'mri' } : { kind: 'ct' });
}

/**
 * A study's volumes as the model input, as evaluation builds it (src/data/dataset.ts): scans in the
 * given order repeated to `numScans` ('exact' sampling), each preprocessed to `shape`. Returns
 * [S, D, H, W] float32 and, per input scan, which volume it came from.
 */
export function prepareStudy(volumes: readonly Volume[], data: ModelData): { images: Float32Array; shape: [number, number, number, number]; scans: number[] } {
  const order = sampleScans(volumes.map((_, i) => i), data.numScans, null, 'exact');
  const pipeline = pipelineOf(data);
  const [D, H, W] = data.shape;
  const per = D * H * W;
  const images = new Float32Array(order.length * per);
  const done = new Map<number, Float32Array>();
  order.forEach((v, k) => {
    let g = done.get(v);
    if (!g) {
      g = preprocessScan(volumes[v] as Volume, pipeline, data.shape).data;
      done.set(v, g);
    }
    images.set(g, k * per);
  });
  return { images, shape: [order.length, D, H, W], scans: order };
}

function checkStudy(m: LoadedModel, study: Float32Array, shape: readonly number[]): [number, number, number, number] {
  if (shape.length !== 4 || !shape.every((n) => Number.isInteger(n) && n > 0)) throw new ShapeError(`study shape must be [S, D, H, W], got [${shape.join(', ')}]`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (study.length !== n) throw new ShapeError(`study has ${study.length} values, shape [${shape.join(', ')}] needs ${n}`);
  if (!m.model.visual) throw new HlipError('config', `${m.source}: the model has no image tower`);
  return shape as [number, number, number, number];
}

function inputTensor(m: LoadedModel, data: Float32Array, shape: readonly number[]): Tensor {
  const t = Tensor.from(m.model.device, data, shape);
  if (m.dtype === 'f32') return t;
  const h = cast(t, 'f16');
  t.dispose();
  return h;
}

/**
 * L2-normalised study embeddings [E] (one per study; every study of `shape` [S, D, H, W]). Studies go
 * through the image tower `batchSize` at a time (default 1), with one readback per batch.
 */
export async function embedStudies(m: LoadedModel, studies: readonly Float32Array[], shape: readonly number[], opts: { batchSize?: number } = {}): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const bs = Math.max(1, opts.batchSize ?? 1);
  m.model.eval();
  for (let i0 = 0; i0 < studies.length; i0 += bs) {
    const part = studies.slice(i0, i0 + bs);
    part.forEach((s) => checkStudy(m, s, shape));
    const per = part[0]!.length;
    const img = new Float32Array(part.length * per);
    part.forEach((s, j) => img.set(s, j * per));
    const f = scope(() => noGrad(() => m.model.encodeImage(inputTensor(m, img, [part.length, shape[0] as number, 1, ...shape.slice(1)]), { normalize: true })));
    if (f.ndim !== 2) {
      f.dispose();
      throw new HlipError('config', `${m.source}: this image tower gives [${f.shape.join(', ')}] features per study (several prefix heads); infer needs one embedding`);
    }
    const v = (await f.data()) as Float32Array;
    const E = f.shape[1] as number;
    f.dispose();
    for (let j = 0; j < part.length; j++) out.push(v.slice(j * E, (j + 1) * E));
  }
  return out;
}

/** The prompt template of a model: its training report prefix before every prompt. */
export function promptTemplate(m: LoadedModel): (prompt: string) => string {
  const prefix = m.data.reportPrefix ?? defaultReportPrefix(m.data.kind);
  return (p) => prefix + p;
}

/** The (negative, positive) classifier of the prompts [E, 2F] (cached per model and prompt set). */
export function promptClassifier(m: LoadedModel, prompts: readonly FindingPrompt[], template: (p: string) => string = promptTemplate(m)): Tensor {
  const texts = prompts.flatMap((p) => [template(p.negative), template(p.positive)]);
  const key = JSON.stringify(texts);
  let cache = classifierCache.get(m.model);
  if (!cache) {
    cache = new Map();
    classifierCache.set(m.model, cache);
  }
  let w = cache.get(key);
  if (!w || w.isDisposed) {
    w = withoutScope(() => noGrad(() => m.model.zeroShotClassifier(m.tokenizer, texts)));
    cache.set(key, w);
  }
  return w;
}

/**
 * Zero-shot probability of every finding for one study: softmax over the scaled logits of the
 * finding's (negative, positive) prompt pair, as src/eval/zeroshot.ts scores a dataset (same
 * classifier, same logits, the pair softmax in float64). Prompts get the model's report prefix.
 */
export async function findingProbabilities(m: LoadedModel, study: Float32Array, shape: readonly number[], prompts: readonly FindingPrompt[], opts: { template?: (p: string) => string } = {}): Promise<Record<string, number>> {
  const [S, D, H, W] = checkStudy(m, study, shape);
  if (!prompts.length) throw new HlipError('config', 'no findings to score');
  const classifier = promptClassifier(m, prompts, opts.template);
  m.model.eval();
  const logits = scope(() =>
    noGrad(() => {
      const f = m.model.encodeImage(inputTensor(m, study, [1, S, 1, D, H, W]), { normalize: true });
      if (f.ndim !== 2) throw new HlipError('config', `${m.source}: this image tower gives several embeddings per study; infer needs one`);
      return m.model.zeroShotLogits(f, classifier);
    }),
  );
  const l = (await logits.data()) as Float32Array;
  logits.dispose();
  const out: Record<string, number> = {};
  prompts.forEach((p, f) => {
    out[p.name] = pairProbability(l[2 * f] as number, l[2 * f + 1] as number);
  });
  return out;
}

/**
 * Probabilities from cached study embeddings (embedStudies output) without the image tower:
 * p = softmax(s·[f·t_neg, f·t_pos])[1] in float64 with the model's logit scale.
 */
export async function probabilitiesFromEmbedding(m: LoadedModel, embedding: Float32Array, prompts: readonly FindingPrompt[], opts: { template?: (p: string) => string } = {}): Promise<Record<string, number>> {
  const w = promptClassifier(m, prompts, opts.template);
  const E = w.shape[0] as number;
  if (embedding.length !== E) throw new ShapeError(`embedding has ${embedding.length} values, the model's is ${E}`);
  const cw = (await w.data()) as Float32Array;
  const s = Math.exp(await m.model.logitScaleParam.item());
  const K = w.shape[1] as number;
  const dot = (k: number) => {
    let acc = 0;
    for (let e = 0; e < E; e++) acc += (embedding[e] as number) * (cw[e * K + k] as number);
    return s * acc;
  };
  const out: Record<string, number> = {};
  prompts.forEach((p, f) => {
    out[p.name] = pairProbability(dot(2 * f), dot(2 * f + 1));
  });
  return out;
}

export { relevanceMap, type RelevanceOptions, type RelevanceResult } from './relevance.js';
