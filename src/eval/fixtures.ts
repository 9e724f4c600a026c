// Runs a golden fixture (../shared/golden format): loads its parameters and inputs, computes every
// tensor the sidecar lists that is not an input (outputs, intermediates, losses, gradients).
// Browser-safe: the caller opens the files (CLI: from disk; tests: fs or fetch).
import { FormatError, HlipError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import type { SafetensorsFile } from '../io/safetensors.js';
import type { HostTensor, Module } from '../nn/module.js';
import { exp, l2Normalize, mul, reshape, sum } from '../ops/index.js';
import { resampleSpatial, sequentialRows } from '../models/posemb.js';
import { scopeAsync } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { BertTextEncoder, type BertConfig } from '../models/bert.js';
import type { CustomTextCLIP } from '../models/clip.js';
import { buildOpenClip, parseOpenClipConfig } from '../models/openclip.js';
import { tokenBatch } from '../models/text-transformer.js';
import { HlipVisualEncoder } from '../models/visual.js';
import { visualConfigFromJson } from '../models/configs.js';
import { clipLoss, dualClipLoss, sigLipLoss } from '../train/losses.js';

export interface TensorIndexEntry {
  dtype: string;
  shape: number[];
}

/** The parts of a golden sidecar the runner reads (the rest is description). */
export interface FixtureSidecar {
  fixture: string;
  tensor_index: Record<string, TensorIndexEntry>;
  /** Another fixture file (same folder) holding the model parameters. */
  model_parameters_from?: string;
  sha256?: string;
  [key: string]: unknown;
}

export interface FixtureFiles {
  sidecar: FixtureSidecar;
  /** The fixture's own file (inputs, possibly expected outputs, which are ignored). */
  file: SafetensorsFile;
  /** The file named by `model_parameters_from`, when the sidecar has one, and its sidecar. */
  params?: SafetensorsFile;
  paramsSidecar?: FixtureSidecar;
}

/** Computed tensors by fixture name, float32. */
export type FixtureOutputs = Map<string, HostTensor>;

/**
 * One kind of fixture. `isInput` says which tensor_index names are read (parameters, inputs, loss
 * weights); every other name except float64 references must be produced by `run`.
 */
export interface FixtureHandler {
  readonly name: string;
  matches(sidecar: FixtureSidecar): boolean;
  isInput(name: string, sidecar: FixtureSidecar): boolean;
  run(dev: Device, files: FixtureFiles): Promise<FixtureOutputs>;
}

const handlers: FixtureHandler[] = [];

/** Adds a handler (later registrations win, so a model file can plug in its own fixtures). */
export function registerFixtureHandler(h: FixtureHandler): void {
  handlers.unshift(h);
}

export function fixtureHandler(sidecar: FixtureSidecar): FixtureHandler {
  const h = handlers.find((x) => x.matches(sidecar));
  if (!h) throw new HlipError('config', `no fixture runner for '${sidecar.fixture}' (known: ${handlers.map((x) => x.name).join(', ')})`);
  return h;
}

/** Float64 precision references are never recomputed. */
export const isPrecisionReference = (name: string): boolean => name.includes('.f64.');

/** The names a run must produce: tensor_index minus inputs minus float64 references. */
export function fixtureOutputNames(sidecar: FixtureSidecar): string[] {
  const h = fixtureHandler(sidecar);
  return Object.keys(sidecar.tensor_index).filter((n) => !isPrecisionReference(n) && !h.isInput(n, sidecar));
}

export function parseSidecar(json: unknown, source = 'sidecar'): FixtureSidecar {
  const o = json as FixtureSidecar;
  if (typeof o !== 'object' || o === null || typeof o.fixture !== 'string' || typeof o.tensor_index !== 'object' || o.tensor_index === null) {
    throw new FormatError(source, 'not a golden fixture sidecar (needs "fixture" and "tensor_index")');
  }
  return o;
}

/**
 * Runs the fixture and returns exactly the tensors of `fixtureOutputNames` (shapes checked against
 * the tensor_index). Throws if the handler misses one.
 */
export async function runFixture(dev: Device, files: FixtureFiles): Promise<FixtureOutputs> {
  const { sidecar } = files;
  if (sidecar.model_parameters_from && !files.params) throw new HlipError('config', `${sidecar.fixture}: parameters come from '${sidecar.model_parameters_from}'; open it and pass it as files.params`);
  const h = fixtureHandler(sidecar);
  const got = await h.run(dev, files);
  const out: FixtureOutputs = new Map();
  for (const name of fixtureOutputNames(sidecar)) {
    const t = got.get(name);
    if (!t) throw new HlipError('config', `${sidecar.fixture}: runner '${h.name}' did not compute '${name}'`);
    const want = (sidecar.tensor_index[name] as TensorIndexEntry).shape;
    if (t.shape.join() !== want.join()) throw new HlipError('config', `${sidecar.fixture}: '${name}' has shape [${t.shape.join(', ')}], the sidecar says [${want.join(', ')}]`);
    out.set(name, t);
  }
  return out;
}

// ------------------------------------------------------------------ helpers shared by handlers

/** Reads one float tensor as a host tensor. */
export async function hostTensor(file: SafetensorsFile, name: string): Promise<HostTensor> {
  return { shape: [...file.entry(name).shape], data: await file.float32(name) };
}

/** Every tensor whose name starts with `prefix` (names kept whole), for Module.loadStateDict. */
export async function stateDictOf(file: SafetensorsFile, prefix: string, skip: (n: string) => boolean = () => false): Promise<Map<string, HostTensor>> {
  const m = new Map<string, HostTensor>();
  for (const n of file.names()) if (n.startsWith(prefix) && !skip(n)) m.set(n, await hostTensor(file, n));
  return m;
}

/** Reads a tensor back to the host (float32). */
export async function readBack(t: Tensor): Promise<HostTensor> {
  return { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) };
}

/** Uploads a fixture tensor as a leaf (optionally requiring grad). */
async function leaf(dev: Device, file: SafetensorsFile, name: string, requiresGrad = false): Promise<Tensor> {
  const h = await hostTensor(file, name);
  const t = Tensor.from(dev, h.data, h.shape, 'f32');
  t.requiresGrad = requiresGrad;
  return t;
}

/** Parameter gradients `grad.<prefix><name>` of a module (after backward). */
async function paramGrads(m: Module, prefix: string, out: FixtureOutputs): Promise<void> {
  for (const [n, p] of m.namedParameters(prefix)) {
    if (!p.grad) throw new HlipError('autograd', `no gradient reached parameter '${n}'`);
    out.set(`grad.${n}`, await readBack(p.grad));
  }
}

function disposeGrads(m: Module): void {
  for (const p of m.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
}

const record = (o: unknown): Record<string, unknown> => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>) : {});
const numberOf = (o: Record<string, unknown>, k: string, what: string): number => {
  const v = o[k];
  if (typeof v !== 'number') throw new HlipError('config', `${what}: missing number '${k}'`);
  return v;
};

// ------------------------------------------------------------------ losses

const LOSS_LEAVES = ['image_features', 'text_features', 'text_features_report', 'logit_scale', 'logit_bias'];

const lossesHandler: FixtureHandler = {
  name: 'losses',
  matches: (s) => s.fixture === 'losses',
  isInput: (n) => LOSS_LEAVES.includes(n.slice(n.indexOf('.') + 1)),
  async run(dev, { sidecar, file }) {
    const out: FixtureOutputs = new Map();
    const cases = record(sidecar['cases']);
    for (const [c, spec] of Object.entries(cases)) {
      const kind = String(record(spec)['loss'] ?? '');
      const has = (n: string) => file.tensors.has(`${c}.${n}`);
      await scopeAsync(async () => {
        const img = await leaf(dev, file, `${c}.image_features`, true);
        const txt = await leaf(dev, file, `${c}.text_features`, true);
        const ls = await leaf(dev, file, `${c}.logit_scale`, true);
        const lb = has('logit_bias') ? await leaf(dev, file, `${c}.logit_bias`, true) : null;
        const put = async (n: string, t: Tensor) => out.set(`${c}.${n}`, await readBack(t));
        let loss: Tensor;
        let scales: [string, Tensor, Tensor][]; // (name, exp value, log-scale leaf)
        if (/dual/i.test(kind) || has('text_features_report')) {
          const rep = await leaf(dev, file, `${c}.text_features_report`, true);
          const r = dualClipLoss(img, txt, rep, ls, lb);
          loss = r.loss;
          await put('loss_sentence', r.sentence.loss);
          if (r.report) await put('loss_report', r.report.loss);
          scales = [['scale', r.sentence.scale, ls]];
          if (r.report && lb) scales.push(['scale_report', r.report.scale, lb]);
          loss.backward();
          await put('grad.text_features_report', rep.grad as Tensor);
        } else if (/siglip/i.test(kind)) {
          if (!lb) throw new HlipError('config', `losses/${c}: SigLIP needs logit_bias`);
          const r = sigLipLoss(img, txt, ls, lb);
          loss = r.loss;
          await put('logits', r.logits);
          scales = [['scale', r.scale, ls]];
          loss.backward();
        } else {
          const r = clipLoss(img, txt, ls, lb);
          loss = r.loss;
          await put('logits_per_image', r.logitsPerImage);
          await put('logits_per_text', r.logitsPerText);
          scales = [['scale', r.scale, ls]];
          loss.backward();
        }
        await put('loss', loss);
        await put('grad.image_features', img.grad as Tensor);
        await put('grad.text_features', txt.grad as Tensor);
        await put('grad.logit_scale', ls.grad as Tensor);
        if (lb) await put('grad.logit_bias', lb.grad as Tensor);
        for (const [n, s, logS] of scales) {
          const sv = await readBack(s);
          out.set(`${c}.${n}`, sv);
          // d loss / d exp(u) = (d loss / d u) / exp(u).
          const gl = (await readBack(logS.grad as Tensor)).data[0] as number;
          out.set(`${c}.grad.${n}`, { shape: [], data: Float32Array.of(gl / (sv.data[0] as number)) });
        }
        for (const t of [img, txt, ls, lb]) if (t) { t.grad?.dispose(); t.grad = null; }
      });
    }
    return out;
  },
};

// ------------------------------------------------------------------ BERT text tower

function bertConfigOf(sidecar: FixtureSidecar): { cfg: BertConfig; projDim: number } {
  const c = record(sidecar['config']);
  const w = 'bert_text config';
  const cfg: BertConfig = {
    vocabSize: numberOf(c, 'vocab_size', w),
    hidden: numberOf(c, 'hidden_size', w),
    layers: numberOf(c, 'num_hidden_layers', w),
    heads: numberOf(c, 'num_attention_heads', w),
    intermediate: numberOf(c, 'intermediate_size', w),
    maxPositions: numberOf(c, 'max_position_embeddings', w),
    typeVocabSize: numberOf(c, 'type_vocab_size', w),
    eps: numberOf(c, 'layer_norm_eps', w),
    padId: typeof c['pad_token_id'] === 'number' ? c['pad_token_id'] : 0,
  };
  if (c['hidden_act'] !== undefined && c['hidden_act'] !== 'gelu') throw new HlipError('config', `BERT hidden_act '${String(c['hidden_act'])}' is not supported (exact gelu only)`);
  return { cfg, projDim: numberOf(sidecar as Record<string, unknown>, 'proj_dim', w) };
}

const bertHandler: FixtureHandler = {
  name: 'bert_text',
  matches: (s) => s.fixture === 'bert_text',
  isInput: (n) => n.startsWith('text.') || n.startsWith('input.') || n === 'loss_weights',
  async run(dev, { sidecar, file }) {
    const { cfg, projDim } = bertConfigOf(sidecar);
    const idsE = file.entry('input.ids');
    const [b, t] = idsE.shape as [number, number];
    const tokens = tokenBatch(await file.int32('input.ids'), [b, t]);
    const model = new BertTextEncoder(dev, cfg, projDim, t);
    const out: FixtureOutputs = new Map();
    try {
      model.loadStateDict(await stateDictOf(file, 'text.'), { prefix: 'text.' });
      await scopeAsync(async () => {
        const hidden: Tensor[] = [];
        const opts = {
          hiddenStates: hidden,
          ...(file.tensors.has('input.attention_mask') ? { attentionMask: await file.int32('input.attention_mask') } : {}),
          ...(file.tensors.has('input.token_type_ids') ? { tokenTypeIds: await file.int32('input.token_type_ids') } : {}),
        };
        const pooled = model.pooled(tokens, opts);
        const projected = model.project(pooled);
        const weights = await leaf(dev, file, 'loss_weights');
        const prod = mul(projected, weights);
        const loss = sum(prod);
        loss.backward();
        for (let i = 0; i < hidden.length; i++) out.set(`output.hidden_states.${i}`, await readBack(hidden[i] as Tensor));
        out.set('output.last_hidden_state', await readBack(hidden[hidden.length - 1] as Tensor));
        out.set('output.pooled', await readBack(pooled));
        out.set('output.projected', await readBack(projected));
        out.set('loss', await readBack(loss));
        await paramGrads(model, 'text.', out);
      });
    } finally {
      disposeGrads(model);
      model.dispose();
    }
    return out;
  },
};

// ------------------------------------------------------------------ CLIP wrapper

/** A CustomTextCLIP (HLIP image tower + open_clip TextTransformer) from a fixture's open_clip config and tower kwargs. */
function clipOf(dev: Device, oc: Record<string, unknown>, vision: Record<string, unknown>, what: string): { model: CustomTextCLIP; visual: HlipVisualEncoder } {
  const { model, visual } = buildOpenClip(dev, parseOpenClipConfig(oc, `${what} open_clip_model_config`), { visual: vision });
  return { model, visual: visual as HlipVisualEncoder };
}

const clipHandler: FixtureHandler = {
  name: 'clip_wrapper',
  matches: (s) => s.fixture === 'clip_wrapper',
  isInput: (n) => !n.startsWith('output.'),
  async run(dev, { sidecar, file }) {
    const { model, visual } = clipOf(dev, record(sidecar['open_clip_model_config']), record(sidecar['image_tower']), 'clip_wrapper');
    const out: FixtureOutputs = new Map();
    try {
      model.loadStateDict(await stateDictOf(file, '', (n) => n.startsWith('input.') || n.startsWith('output.')));
      const idsE = file.entry('input.text');
      const tokens = tokenBatch(await file.int32('input.text'), idsE.shape as [number, number]);
      await scopeAsync(async () => {
        const te = model.encodeText(tokens);
        const tf = l2Normalize(te, -1);
        out.set('output.text_embed_unnormalized', await readBack(te));
        out.set('output.text_features', await readBack(tf));
        out.set('output.logit_scale_exp', await readBack(exp(model.logitScaleParam)));
        const image = await leaf(dev, file, 'input.image');
        // One trunk pass gives forward_features, the trunk's pooled token and the projected embedding.
        const vo = visual.forward(image);
        out.set('output.trunk_forward_features', await readBack(vo.tokens as Tensor));
        out.set('output.trunk_pooled', await readBack(vo.pooled));
        const imf = l2Normalize(vo.features, -1);
        out.set('output.image_embed_unnormalized', await readBack(vo.features));
        out.set('output.image_features', await readBack(imf));
        const { logitsPerImage, logitsPerText } = model.logits(imf, tf);
        out.set('output.logits_per_image', await readBack(logitsPerImage));
        out.set('output.logits_per_text', await readBack(logitsPerText));
      });
    } finally {
      model.dispose();
    }
    return out;
  },
};

/** Training checkpoint as safetensors (`module.` keys, optimizer state): strict load, then the forward check. */
const checkpointHandler: FixtureHandler = {
  name: 'checkpoint_openclip',
  matches: (s) => s.fixture === 'checkpoint_openclip',
  isInput: (n) => n.startsWith('module.') || n.startsWith('optimizer.') || n === 'check.input',
  async run(dev, { sidecar, file }) {
    const m = record(sidecar['model']);
    const { model, visual } = clipOf(dev, record(m['open_clip_model_config']), record(m['vision']), 'checkpoint_openclip');
    const out: FixtureOutputs = new Map();
    try {
      const sd = new Map<string, HostTensor>();
      for (const [k, v] of await stateDictOf(file, 'module.')) sd.set(k.slice('module.'.length), v);
      model.loadStateDict(sd);
      await scopeAsync(async () => {
        const vo = visual.forward(await leaf(dev, file, 'check.input'), { tokens: false });
        out.set('check.trunk_pooled', await readBack(vo.pooled));
        out.set('check.image_features', await readBack(l2Normalize(vo.features, -1)));
      });
    } finally {
      model.dispose();
    }
    return out;
  },
};

// ------------------------------------------------------------------ HLIP visual encoder

function visualEncoderOf(dev: Device, sidecar: FixtureSidecar): HlipVisualEncoder {
  const arch = sidecar['architecture'];
  if (typeof arch !== 'object' || arch === null) throw new HlipError('config', `${sidecar.fixture}: the sidecar has no 'architecture'`);
  return new HlipVisualEncoder(dev, visualConfigFromJson(arch));
}

async function loadVisual(enc: HlipVisualEncoder, file: SafetensorsFile): Promise<void> {
  if (enc.head) enc.loadStateDict(await stateDictOf(file, 'visual.'), { prefix: 'visual.' });
  else enc.trunk.loadStateDict(await stateDictOf(file, 'visual.trunk.'), { prefix: 'visual.trunk.' });
}

function trunkBuffer(enc: HlipVisualEncoder, name: string): Tensor | null {
  return [...enc.trunk.namedBuffers()].find(([n]) => n === name)?.[1] ?? null;
}

/** Encoder forward fixtures (`vit2025_*`, `vit2026_*`): every case, every stage. */
const visualHandler: FixtureHandler = {
  name: 'visual_encoder',
  matches: (s) => /^vit20\d\d_/.test(s.fixture) && !s.model_parameters_from,
  isInput: (n) => n.startsWith('visual.') || n.endsWith('.input'),
  async run(dev, { sidecar, file }) {
    const enc = visualEncoderOf(dev, sidecar);
    const out: FixtureOutputs = new Map();
    try {
      await loadVisual(enc, file);
      const cases = [...new Set(Object.keys(sidecar.tensor_index).filter((n) => n.endsWith('.input')).map((n) => n.slice(0, -'.input'.length)))];
      for (const c of cases) {
        const want = (n: string) => Object.prototype.hasOwnProperty.call(sidecar.tensor_index, `${c}.${n}`);
        await scopeAsync(async () => {
          const x = await leaf(dev, file, `${c}.input`);
          const o = enc.forward(x, { blocks: true, intermediates: true });
          const put = async (n: string, t: Tensor) => out.set(`${c}.${n}`, await readBack(t));
          await put('patch_embed', o.patchEmbed as Tensor);
          await put('pos_embed', o.posEmbed as Tensor);
          for (const [i, b] of (o.blocks as Tensor[]).entries()) await put(`block.${i}`, b);
          await put('forward_features', o.tokens as Tensor);
          await put('pooled', o.pooled);
          if (want('image_features_unnormalized')) await put('image_features_unnormalized', o.features);
          if (want('image_features')) await put('image_features', l2Normalize(o.features, -1));
          const [, n, d, h, w] = (o.patchEmbed as Tensor).shape as number[];
          const spatial = trunkBuffer(enc, 'spatial_posemb');
          if (want('spatial_posemb_resampled') && spatial) await put('spatial_posemb_resampled', resampleSpatial(spatial, [d as number, h as number, w as number]));
          const seq = trunkBuffer(enc, 'sequential_posemb');
          if (want('sequential_posemb_used') && seq) {
            const rows = sequentialRows(seq, n as number);
            await put('sequential_posemb_used', reshape(rows, [1, n as number, seq.shape[2] as number]));
          }
        });
      }
    } finally {
      enc.dispose();
    }
    return out;
  },
};

/** Gradient fixtures (`vit*_grads`): loss = sum(pooled · loss_weights), grads of the input and every trainable parameter. */
const visualGradsHandler: FixtureHandler = {
  name: 'visual_encoder_grads',
  matches: (s) => /^vit20\d\d_/.test(s.fixture) && !!s.model_parameters_from,
  isInput: (n) => n === 'input' || n === 'loss_weights',
  async run(dev, { file, params, paramsSidecar }) {
    if (!params || !paramsSidecar) throw new HlipError('config', 'visual gradient fixture: pass the parameter fixture and its sidecar (files.params, files.paramsSidecar)');
    const enc = visualEncoderOf(dev, paramsSidecar);
    const out: FixtureOutputs = new Map();
    try {
      await loadVisual(enc, params);
      enc.train(false);
      await scopeAsync(async () => {
        const x = await leaf(dev, file, 'input', true);
        const lw = await leaf(dev, file, 'loss_weights');
        const o = enc.forward(x, { tokens: false });
        const loss = sum(mul(o.pooled, lw));
        loss.backward();
        out.set('loss', await readBack(loss));
        out.set('grad.input', await readBack(x.grad as Tensor));
        await paramGrads(enc.trunk, 'visual.trunk.', out);
        x.grad?.dispose();
      });
    } finally {
      disposeGrads(enc);
      enc.dispose();
    }
    return out;
  },
};

registerFixtureHandler(visualHandler);
registerFixtureHandler(visualGradsHandler);
registerFixtureHandler(lossesHandler);
registerFixtureHandler(bertHandler);
registerFixtureHandler(clipHandler);
registerFixtureHandler(checkpointHandler);
