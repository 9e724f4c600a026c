// Released Hugging Face layout of HLIP models (hlip-2026-delta §5), browser-safe: the caller hands in
// file access (Node: ./node-hf.ts over a directory; browser: File objects or ArrayBuffers).
//   model.safetensors                     float32 state dict, open_clip names (no `module.`)
//   hlip/model_configs/<MODEL_NAME>.json  open_clip model configs (2026 repos: the whole vendored folder)
//   open_clip_config.json {model_cfg}     2025_10_08 repo (with model_configs/ at the root)
//   tokenizer.json / vocab.txt (+ tokenizer_config.json)
import { FormatError, HlipError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import type { HostTensor } from '../nn/module.js';
import { buildOpenClip, openClipShapeMismatch, openClipVisualConfig, parseOpenClipConfig, type OpenClipModel, type OpenClipModelConfig } from '../models/openclip.js';
import { JsonTokenizer, WordPieceTokenizer, type TextTokenizerBase } from '../models/tokenizer.js';
import { stripModulePrefix } from './pt.js';
import { openSafetensors, type SafetensorsFile } from './safetensors.js';
import { readRange, toSource, type ByteSource } from './source.js';

/** Read access to the files of a repository snapshot, by '/'-separated path relative to its root. */
export interface HfFileAccess {
  /** Directory (or other label) used in messages. */
  readonly name: string;
  /** Every file path in the snapshot. */
  list(): Promise<readonly string[]>;
  /** A listed file (throws a typed error for others). Close it when done. */
  open(path: string): Promise<ByteSource>;
}

/** A config that names several candidates whose models differ: the caller must choose. */
export class AmbiguousConfigError extends HlipError {
  constructor(message: string, readonly candidates: string[], source: string) {
    super('config', message, { source });
    this.name = 'AmbiguousConfigError';
  }
}

export const hfPath = (files: HfFileAccess, path: string): string => (files.name.endsWith('/') ? files.name + path : `${files.name}/${path}`);

type BlobLike = Blob | ArrayBuffer | Uint8Array;

/**
 * File access over in-memory data: browser `File`s (from a directory picker: `webkitRelativePath`
 * gives the path; a common top folder is dropped) or a map path → Blob / ArrayBuffer / Uint8Array.
 */
export function hfFilesFrom(entries: Iterable<File> | ReadonlyMap<string, BlobLike> | Record<string, BlobLike>, name = '<hf snapshot>'): HfFileAccess {
  let pairs: [string, BlobLike][];
  if (entries instanceof Map) pairs = [...(entries as ReadonlyMap<string, BlobLike>)];
  else if (typeof (entries as Iterable<File>)[Symbol.iterator] === 'function') {
    const list = [...(entries as Iterable<File>)];
    // A directory picker gives paths that start with the picked folder's name: drop it.
    const picked = list.length > 0 && list.every((f) => f.webkitRelativePath);
    pairs = list.map((f) => [picked ? f.webkitRelativePath.slice(f.webkitRelativePath.indexOf('/') + 1) : f.name, f]);
  } else pairs = Object.entries(entries as Record<string, BlobLike>);
  pairs = pairs.map(([p, b]) => [p.replace(/\\/g, '/').replace(/^\.?\//, ''), b]);
  const byPath = new Map(pairs);
  const access: HfFileAccess = {
    name,
    list: async () => [...byPath.keys()],
    async open(path) {
      const b = byPath.get(path);
      if (b === undefined) throw new HlipError('io', 'no such file in the snapshot', { source: hfPath(access, path) });
      return toSource(b, hfPath(access, path));
    },
  };
  return access;
}

/** Largest text file (config, tokenizer) read whole. */
const MAX_TEXT_BYTES = 64 * 2 ** 20;

async function readText(files: HfFileAccess, path: string): Promise<string> {
  const src = await files.open(path);
  try {
    if (src.size > MAX_TEXT_BYTES) throw new HlipError('limit', `${src.size} bytes is too large for a text file (limit ${MAX_TEXT_BYTES})`, { source: src.name });
    return new TextDecoder().decode(await readRange(src, 0, src.size, 'text file'));
  } finally {
    await src.close?.();
  }
}

async function readJson(files: HfFileAccess, path: string): Promise<unknown> {
  const text = await readText(files, path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FormatError(hfPath(files, path), `not valid JSON: ${(e as Error).message}`, e);
  }
}

const CONFIG_DIRS = ['hlip/model_configs/', 'model_configs/'];

/** How the model config was chosen. */
export type HfConfigSource = 'requested' | 'open_clip_config' | 'readme' | 'shapes';

export interface HfConfigChoice {
  /** MODEL_NAME (config file stem); for open_clip_config.json the matching config's name when one is found. */
  name: string;
  /** Path of the config file inside the snapshot. */
  path: string;
  config: OpenClipModelConfig;
  how: HfConfigSource;
  /** Other candidates that describe the same model (any of them gives the same network). */
  equivalent: string[];
}

export interface HfOptions {
  /** MODEL_NAME: picks `hlip/model_configs/<name>.json` (or `model_configs/<name>.json`). */
  modelName?: string;
  /** Image tower override (reference name or trunk kwargs), e.g. for a timm name the registry lacks. */
  visual?: string | object;
}

/** An opened snapshot: the weights (read lazily) and the chosen config. Close it when done. */
export interface HfSnapshot {
  readonly files: HfFileAccess;
  readonly weights: SafetensorsFile;
  /** Path of model.safetensors as used in messages. */
  readonly weightsPath: string;
  /** Model key → key in the file (a `module.` prefix, if the file has one, is removed). */
  readonly keys: ReadonlyMap<string, string>;
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly config: HfConfigChoice;
  close(): Promise<void>;
}

/** Stable JSON (sorted keys) for comparing configs. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** What determines the network: resolved visual config, text config (tokenizer name aside), scales. */
function modelSignature(cfg: OpenClipModelConfig, visual?: string | object): string {
  const { name: _n, ...v } = openClipVisualConfig(cfg, visual);
  const { hf_tokenizer_name: _t, ...text } = (cfg.text_cfg ?? {}) as Record<string, unknown>;
  return stable({ v, text, e: cfg.embed_dim, s: cfg.init_logit_scale ?? null, b: cfg.init_logit_bias ?? null });
}

const stem = (p: string) => p.slice(p.lastIndexOf('/') + 1, -'.json'.length);

/**
 * Chooses the model config: the requested name; else open_clip_config.json's model_cfg; else the
 * README's MODEL_NAME when its config fits the weights; else the configs whose shapes fit the weights
 * (several that build the same network count as one; several different ones are an
 * AmbiguousConfigError naming them, since shapes cannot tell slice/scan/study layouts apart).
 */
export async function chooseHfConfig(files: HfFileAccess, shapes: ReadonlyMap<string, readonly number[]>, opts: HfOptions = {}, weightsPath = 'model.safetensors'): Promise<HfConfigChoice> {
  const list = await files.list();
  const paths = new Map<string, string>();
  // hlip/model_configs/ (2026) wins over a root model_configs/ of the same name.
  for (const dir of [...CONFIG_DIRS].reverse()) {
    for (const p of list) if (p.startsWith(dir) && p.endsWith('.json') && !p.slice(dir.length).includes('/')) paths.set(stem(p), p);
  }
  const load = async (path: string) => parseOpenClipConfig(await readJson(files, path), hfPath(files, path));
  const hasOpenClip = list.includes('open_clip_config.json');
  const openClipCfg = async (): Promise<OpenClipModelConfig> => {
    const j = (await readJson(files, 'open_clip_config.json')) as Record<string, unknown> | null;
    if (!j || typeof j !== 'object' || typeof j['model_cfg'] !== 'object') throw new FormatError(hfPath(files, 'open_clip_config.json'), 'has no "model_cfg" object');
    return parseOpenClipConfig(j['model_cfg'], hfPath(files, 'open_clip_config.json'));
  };
  if (opts.modelName !== undefined) {
    const p = paths.get(opts.modelName);
    if (p) return { name: opts.modelName, path: p, config: await load(p), how: 'requested', equivalent: [] };
    if (hasOpenClip) return { name: opts.modelName, path: 'open_clip_config.json', config: await openClipCfg(), how: 'requested', equivalent: [] };
    throw new HlipError('config', `no model config '${opts.modelName}': looked for ${CONFIG_DIRS.map((d) => `${d}${opts.modelName}.json`).join(' and ')} (available: ${[...paths.keys()].sort().join(', ') || 'none'})`, { source: files.name });
  }
  if (hasOpenClip) {
    const config = await openClipCfg();
    let name = 'open_clip_config';
    const sig = stable({ ...config, text_cfg: { ...config.text_cfg, hf_tokenizer_name: null } });
    for (const [n, p] of paths) {
      const c = await load(p).catch(() => null);
      if (c && stable({ ...c, text_cfg: { ...c.text_cfg, hf_tokenizer_name: null } }) === sig) name = n;
    }
    return { name, path: 'open_clip_config.json', config, how: 'open_clip_config', equivalent: [] };
  }
  if (!paths.size) throw new HlipError('config', `no model config: expected ${CONFIG_DIRS.map((d) => `${d}<MODEL_NAME>.json`).join(' or ')} or open_clip_config.json`, { source: files.name });
  const fits = new Map<string, OpenClipModelConfig>();
  const reasons: string[] = [];
  for (const [n, p] of [...paths].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let c: OpenClipModelConfig;
    try {
      c = await load(p);
    } catch (e) {
      reasons.push(`${n}: ${(e as Error).message}`);
      continue;
    }
    const why = openClipShapeMismatch(c, shapes, opts.visual);
    if (why) reasons.push(`${n}: ${why}`);
    else fits.set(n, c);
  }
  if (list.includes('README.md')) {
    const m = /MODEL_NAME\s*=\s*["']([\w.-]+)["']/.exec(await readText(files, 'README.md'));
    const hinted = m?.[1];
    const c = hinted !== undefined ? fits.get(hinted) : undefined;
    if (hinted !== undefined && c) return { name: hinted, path: paths.get(hinted) as string, config: c, how: 'readme', equivalent: [] };
  }
  if (!fits.size) {
    throw new HlipError('config', `none of the ${paths.size} model configs fits the weights in ${weightsPath}: ${reasons.slice(0, 8).join('; ')}${reasons.length > 8 ? '; …' : ''}`, { source: files.name });
  }
  const groups = new Map<string, string[]>();
  for (const [n, c] of fits) {
    const s = modelSignature(c, opts.visual);
    groups.set(s, [...(groups.get(s) ?? []), n]);
  }
  if (groups.size > 1) {
    const names = [...fits.keys()];
    throw new AmbiguousConfigError(
      `${names.length} model configs fit the weights in ${weightsPath} but build different models (${[...groups.values()].map((g) => g.join(' = ')).join(' | ')}); pass the model name (MODEL_NAME) to choose`,
      names,
      files.name,
    );
  }
  const [first, ...rest] = [...fits.keys()] as [string, ...string[]];
  return { name: first, path: paths.get(first) as string, config: fits.get(first) as OpenClipModelConfig, how: 'shapes', equivalent: rest };
}

/** Opens model.safetensors and chooses the config (see chooseHfConfig). */
export async function openHfSnapshot(files: HfFileAccess, opts: HfOptions = {}): Promise<HfSnapshot> {
  const list = await files.list();
  const weightsPath = hfPath(files, 'model.safetensors');
  if (!list.includes('model.safetensors')) {
    const alt = list.includes('pytorch_model.bin') ? ' (pytorch_model.bin is there: convert it with `hlip convert pytorch_model.bin model.safetensors`)' : '';
    throw new HlipError('io', `missing model.safetensors: a Hugging Face HLIP snapshot keeps its weights there${alt}`, { source: weightsPath });
  }
  const src = await files.open('model.safetensors');
  let weights: SafetensorsFile;
  try {
    weights = await openSafetensors(src, weightsPath);
  } catch (e) {
    await src.close?.();
    throw e;
  }
  try {
    const keys = stripModulePrefix(new Map(weights.names().map((n) => [n, n] as const)));
    const shapes = new Map([...keys].map(([k, n]) => [k, weights.entry(n).shape] as const));
    const config = await chooseHfConfig(files, shapes, opts, weightsPath);
    return { files, weights, weightsPath, keys, shapes, config, close: () => weights.close() };
  } catch (e) {
    await weights.close();
    throw e;
  }
}

export interface HfTokenizerChoice {
  tokenizer: TextTokenizerBase;
  path: string;
}

/** tokenizer.json (with tokenizer_config.json) through JsonTokenizer, else vocab.txt through WordPiece; null when neither exists. */
export async function loadHfTokenizer(files: HfFileAccess, contextLength: number): Promise<HfTokenizerChoice | null> {
  const list = await files.list();
  const tcfg = list.includes('tokenizer_config.json') ? ((await readJson(files, 'tokenizer_config.json')) as Record<string, unknown>) : {};
  if (list.includes('tokenizer.json')) {
    const json = await readJson(files, 'tokenizer.json');
    if (!json || typeof json !== 'object') throw new FormatError(hfPath(files, 'tokenizer.json'), 'not a tokenizer object');
    try {
      return { tokenizer: new JsonTokenizer(json, tcfg, contextLength), path: 'tokenizer.json' };
    } catch (e) {
      if (e instanceof HlipError) throw e;
      throw new FormatError(hfPath(files, 'tokenizer.json'), `cannot build the tokenizer: ${(e as Error).message}`, e);
    }
  }
  if (list.includes('vocab.txt')) {
    const lower = typeof tcfg['do_lower_case'] === 'boolean' ? tcfg['do_lower_case'] : true;
    try {
      return { tokenizer: WordPieceTokenizer.fromVocabText(await readText(files, 'vocab.txt'), { contextLength, lowerCase: lower }), path: 'vocab.txt' };
    } catch (e) {
      if (e instanceof FormatError) throw new FormatError(hfPath(files, 'vocab.txt'), e.message.replace(/^vocab(\.txt)?: /, ''), e);
      throw e;
    }
  }
  return null;
}

export interface HfLoadOptions extends HfOptions {
  /** Also load the tokenizer (default true). */
  tokenizer?: boolean;
  /** Host bytes read per upload batch (default 64 MiB): bounds host memory while loading. */
  batchBytes?: number;
}

/** A loaded snapshot: the model (eval mode), its tokenizer and what loading found. */
export interface HfModel extends OpenClipModel {
  modelName: string;
  configPath: string;
  configSource: HfConfigSource;
  /** Config names equivalent to the chosen one. */
  equivalent: string[];
  tokenizer: TextTokenizerBase | null;
  tokenizerPath: string | null;
  /** Model tensors the weights lack (left as built, as load_state_dict(strict=False) does). */
  missing: string[];
  /** Tensors of the weights the model does not have (ignored). */
  unexpected: string[];
  dispose(): void;
}

/**
 * Loads a Hugging Face HLIP snapshot: builds the model its config describes and loads
 * model.safetensors with the reference's `strict=False` semantics (missing and unexpected keys are
 * reported, a shape mismatch is an error naming the tensor and the file). Weights are read and
 * uploaded in batches, so the host never holds the whole model.
 */
export async function loadHfModel(dev: Device, files: HfFileAccess, opts: HfLoadOptions = {}): Promise<HfModel> {
  const snap = await openHfSnapshot(files, opts);
  let built: OpenClipModel | null = null;
  try {
    built = buildOpenClip(dev, snap.config.config, { shapes: snap.shapes, ...(opts.visual !== undefined ? { visual: opts.visual } : {}) });
    const model = built.model;
    const own = model.stateDict();
    const missing = [...own.keys()].filter((k) => !snap.keys.has(k));
    const unexpected = [...snap.keys.keys()].filter((k) => !own.has(k));
    // Every shape first: a mismatch fails before anything is uploaded.
    for (const [k, t] of own) {
      const s = snap.shapes.get(k);
      if (s && (s.length !== t.shape.length || s.some((d, i) => d !== t.shape[i]))) {
        throw new ShapeError(`${snap.weightsPath}: '${k}' has shape [${s.join(', ')}], the model (${snap.config.name}, ${snap.config.path}) needs [${t.shape.join(', ')}]`);
      }
    }
    const limit = opts.batchBytes ?? 64 * 2 ** 20;
    let batch = new Map<string, HostTensor>();
    let bytes = 0;
    const flush = () => {
      if (batch.size) model.loadStateDict(batch, { strict: false });
      batch = new Map();
      bytes = 0;
    };
    for (const k of own.keys()) {
      const file = snap.keys.get(k);
      if (file === undefined) continue;
      batch.set(k, { shape: snap.shapes.get(k) as readonly number[], data: await snap.weights.float32(file) });
      bytes += (own.get(k) as { size: number }).size * 4;
      if (bytes >= limit) flush();
    }
    flush();
    model.eval();
    const tok = (opts.tokenizer ?? true) ? await loadHfTokenizer(files, built.contextLength) : null;
    const m = built.model;
    return {
      ...built,
      modelName: snap.config.name,
      configPath: snap.config.path,
      configSource: snap.config.how,
      equivalent: snap.config.equivalent,
      tokenizer: tok?.tokenizer ?? null,
      tokenizerPath: tok?.path ?? null,
      missing,
      unexpected,
      dispose: () => m.dispose(),
    };
  } catch (e) {
    built?.model.dispose();
    throw e;
  } finally {
    await snap.close();
  }
}
