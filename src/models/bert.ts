// BERT text tower as HLIP uses it: Hugging Face BertModel (no pooler) wired like open_clip's
// HFTextEncoder with 'cls_last_hidden_state_pooler' and a bias-free 'linear' projection.
import { ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { Module } from '../nn/module.js';
import { add, div, gather, layerNorm, linear, mul, ones, randn, reshape, slice, squeeze, sum, zeros } from '../ops/index.js';
import { checkpoint } from '../tensor/checkpoint.js';
import { scope } from '../tensor/scope.js';
import { attention, WindowTable } from '../ops/attention.js';
import { Tensor } from '../tensor/tensor.js';
import type { TextTower, TokenBatch } from './text-transformer.js';

export interface BertConfig {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  typeVocabSize: number;
  /** LayerNorm eps (BERT: 1e-12). */
  eps: number;
  padId: number;
}

/** BERT-base as in BiomedBERT (BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext) and CXR-BERT. */
export const BERT_BASE: BertConfig = {
  vocabSize: 30522,
  hidden: 768,
  layers: 12,
  heads: 12,
  intermediate: 3072,
  maxPositions: 512,
  typeVocabSize: 2,
  eps: 1e-12,
  padId: 0,
};
export const BIOMEDBERT_CONFIG: BertConfig = BERT_BASE;
export const CXR_BERT_CONFIG: BertConfig = BERT_BASE;

/** open_clip poolers HLIP's BERT tower can use. */
export type BertPooler = 'cls_last_hidden_state_pooler' | 'mean_pooler';

/** 1 for a real token, 0 for padding: the caller's attention mask, else ids ≠ padId. */
export function tokenMask(tokens: TokenBatch, opts: BertForwardOptions, padId: number): Int32Array {
  return Int32Array.from({ length: tokens.ids.length }, (_, i) => ((opts.attentionMask ? (opts.attentionMask[i] as number) !== 0 : tokens.ids[i] !== padId) ? 1 : 0));
}

/**
 * The batch without its trailing columns in which every row is padding (at least one column stays).
 * Mask and token types are cut with it. Returns the inputs unchanged when there is nothing to cut.
 */
export function trimPadding(tokens: TokenBatch, opts: BertForwardOptions, padId: number): { tokens: TokenBatch; opts: BertForwardOptions } {
  const [b, t] = tokens.shape;
  if (opts.hiddenStates) return { tokens, opts }; // callers of hiddenStates compare full-width layers
  const mask = tokenMask(tokens, opts, padId);
  let keep = 1;
  for (let r = 0; r < b; r++) for (let c = t - 1; c >= keep; c--) if (mask[r * t + c]) { keep = c + 1; break; }
  if (keep === t) return { tokens, opts };
  const cut = <T extends ArrayLike<number>>(a: T): Int32Array => {
    const out = new Int32Array(b * keep);
    for (let r = 0; r < b; r++) for (let c = 0; c < keep; c++) out[r * keep + c] = a[r * t + c] as number;
    return out;
  };
  const o: BertForwardOptions = { ...opts, ...(opts.attentionMask ? { attentionMask: cut(opts.attentionMask) } : {}), ...(opts.tokenTypeIds ? { tokenTypeIds: cut(opts.tokenTypeIds) } : {}) };
  return { tokens: { ids: cut(tokens.ids), shape: [b, keep] }, opts: o };
}

export interface BertForwardOptions {
  /** [B·T] 1 = token, 0 = padding; default ids ≠ padId. */
  attentionMask?: ArrayLike<number>;
  /** [B·T] segment ids; default all 0 (BertModel's buffer when none are passed). */
  tokenTypeIds?: ArrayLike<number>;
  /** When given, receives the embedding output and every layer's output ([B, T, hidden] each). */
  hiddenStates?: Tensor[];
}

/**
 * Hugging Face `BertModel` without pooler (post-LN encoder, exact GELU, absolute positions, token
 * types). Parameter names are the `state_dict` names (embeddings.*, encoder.layer.<i>.*).
 */
export class BertModel extends Module {
  constructor(device: Device, readonly cfg: BertConfig, seed = 0) {
    super(device);
    const { hidden: h, intermediate: f } = cfg;
    let s = seed;
    // BERT init: N(0, 0.02) weights and tables, LayerNorm 1/0, zero biases.
    const w = (shape: number[]) => {
      const k = s++;
      return () => randn(device, shape, k, { std: 0.02 });
    };
    const one = (n: number) => () => ones(device, [n]);
    const zero = (n: number) => () => zeros(device, [n]);
    this.param('embeddings.word_embeddings.weight', w([cfg.vocabSize, h]));
    this.param('embeddings.position_embeddings.weight', w([cfg.maxPositions, h]));
    this.param('embeddings.token_type_embeddings.weight', w([cfg.typeVocabSize, h]));
    this.param('embeddings.LayerNorm.weight', one(h));
    this.param('embeddings.LayerNorm.bias', zero(h));
    for (let i = 0; i < cfg.layers; i++) {
      const p = `encoder.layer.${i}.`;
      for (const n of ['query', 'key', 'value']) {
        this.param(`${p}attention.self.${n}.weight`, w([h, h]));
        this.param(`${p}attention.self.${n}.bias`, zero(h));
      }
      this.param(`${p}attention.output.dense.weight`, w([h, h]));
      this.param(`${p}attention.output.dense.bias`, zero(h));
      this.param(`${p}attention.output.LayerNorm.weight`, one(h));
      this.param(`${p}attention.output.LayerNorm.bias`, zero(h));
      this.param(`${p}intermediate.dense.weight`, w([f, h]));
      this.param(`${p}intermediate.dense.bias`, zero(f));
      this.param(`${p}output.dense.weight`, w([h, f]));
      this.param(`${p}output.dense.bias`, zero(h));
      this.param(`${p}output.LayerNorm.weight`, one(h));
      this.param(`${p}output.LayerNorm.bias`, zero(h));
    }
  }

  /** Keep only each layer's input and re-run the layer in backward (HF gradient_checkpointing_enable()). */
  gradCheckpointing = false;

  /** Parameters of encoder layer i. */
  private layerParams(i: number): Tensor[] {
    const p = `encoder.layer.${i}.`;
    return [...this.namedParameters()].filter(([n]) => n.startsWith(p)).map(([, t]) => t);
  }

  /** last_hidden_state [B, T, hidden]. */
  forward(tokens: TokenBatch, opts: BertForwardOptions = {}): Tensor {
    const [b, t] = tokens.shape;
    const { hidden: hd, heads, eps, padId } = this.cfg;
    if (t > this.cfg.maxPositions) throw new ShapeError(`BERT: ${t} tokens exceed the ${this.cfg.maxPositions} positions`);
    const rows = b * t;
    const dev = this.device;
    const mask = tokenMask(tokens, opts, padId);
    const types = opts.tokenTypeIds ?? new Int32Array(rows);
    if (types.length !== rows || mask.length !== rows) throw new ShapeError(`BERT: attention mask / token types must have ${rows} entries`);
    // LayerNorm(word[ids] + position[0..T-1] + type[types]).
    const word = gather(this.get('embeddings.word_embeddings.weight'), tokens.ids, [b, t]);
    const pos = slice(this.get('embeddings.position_embeddings.weight'), 0, 0, t);
    const typ = gather(this.get('embeddings.token_type_embeddings.weight'), types, [b, t]);
    const e1 = add(word, pos);
    const e2 = add(e1, typ);
    const e3 = layerNorm(e2, this.get('embeddings.LayerNorm.weight'), this.get('embeddings.LayerNorm.bias'), eps);
    for (const x of [word, pos, typ, e1, e2]) x.dispose();
    let x = reshape(e3, [rows, hd]);
    e3.dispose();
    opts.hiddenStates?.push(reshape(x, [b, t, hd]));
    const keyMask = Tensor.from(dev, mask, [rows], 'i32');
    const windows = WindowTable.uniform(b, t);
    const dh = hd / heads;
    const layer = (i: number, x: Tensor, keyMask: Tensor): Tensor => {
      const p = `encoder.layer.${i}.`;
      const proj = (n: string) => {
        const y = linear(x, this.get(`${p}attention.self.${n}.weight`), this.get(`${p}attention.self.${n}.bias`));
        const r = reshape(y, [rows, heads, dh]);
        y.dispose();
        return r;
      };
      const q = proj('query');
      const k = proj('key');
      const v = proj('value');
      // Padded keys get exactly zero weight (the reference adds float32 min to their scores).
      const o = attention({ q, k, v }, { windows, keyMask });
      const o2 = reshape(o, [rows, hd]);
      const d = linear(o2, this.get(`${p}attention.output.dense.weight`), this.get(`${p}attention.output.dense.bias`));
      const r1 = add(x, d);
      const a = layerNorm(r1, this.get(`${p}attention.output.LayerNorm.weight`), this.get(`${p}attention.output.LayerNorm.bias`), eps);
      const f = linear(a, this.get(`${p}intermediate.dense.weight`), this.get(`${p}intermediate.dense.bias`), { activation: 'gelu' });
      const m = linear(f, this.get(`${p}output.dense.weight`), this.get(`${p}output.dense.bias`));
      const r2 = add(a, m);
      const y = layerNorm(r2, this.get(`${p}output.LayerNorm.weight`), this.get(`${p}output.LayerNorm.bias`), eps);
      for (const h of [q, k, v, o, o2, d, r1, a, f, m, r2]) h.dispose();
      return y;
    };
    for (let i = 0; i < this.cfg.layers; i++) {
      // HF gradient_checkpointing_enable(): each layer keeps only its input (and the key mask) for backward.
      const y = this.gradCheckpointing ? checkpoint((xs) => layer(i, xs[0] as Tensor, xs[1] as Tensor), [x, keyMask], { params: this.layerParams(i) }) : layer(i, x, keyMask);
      x.dispose();
      x = y;
      opts.hiddenStates?.push(reshape(x, [b, t, hd]));
    }
    keyMask.dispose();
    const out = reshape(x, [b, t, hd]);
    x.dispose();
    return out;
  }
}

/**
 * open_clip `HFTextEncoder` as configured by HLIP: `transformer` (BertModel), first-token pooling of
 * last_hidden_state, `proj` Linear(hidden → outputDim, bias=False). Names relative to `text.`:
 * transformer.*, proj.weight.
 */
export class BertTextEncoder extends Module implements TextTower {
  readonly transformer: BertModel;

  /** open_clip `hf_pooler_type`: 'cls_last_hidden_state_pooler' (HLIP) or 'mean_pooler' (masked mean over tokens). */
  readonly pooler: BertPooler;

  constructor(device: Device, cfg: BertConfig, readonly outputDim: number, readonly contextLength: number = cfg.maxPositions, seed = 0, pooler: BertPooler = 'cls_last_hidden_state_pooler') {
    super(device);
    this.pooler = pooler;
    if (contextLength > cfg.maxPositions) throw new ShapeError(`BERT context ${contextLength} exceeds ${cfg.maxPositions} positions`);
    this.transformer = this.child('transformer', new BertModel(device, cfg, seed));
    this.param('proj.weight', () => randn(device, [outputDim, cfg.hidden], seed + 1000, { std: cfg.hidden ** -0.5 }));
  }

  /** Per-layer gradient checkpointing of the BERT encoder (see BertModel.gradCheckpointing). */
  get gradCheckpointing(): boolean {
    return this.transformer.gradCheckpointing;
  }
  set gradCheckpointing(on: boolean) {
    this.transformer.gradCheckpointing = on;
  }

  /** last_hidden_state[:, 0] (or its masked mean over tokens with 'mean_pooler'), [B, hidden]. */
  pooled(tokensIn: TokenBatch, optsIn: BertForwardOptions = {}): Tensor {
    // Padding columns that every row masks change no output (masked keys get zero weight; rows are
    // independent elsewhere), so they are cut before the encoder: reports fill ~40 of 128 positions.
    const { tokens, opts } = trimPadding(tokensIn, optsIn, this.transformer.cfg.padId);
    const last = this.transformer.forward(tokens, opts);
    if (this.pooler === 'mean_pooler') {
      const [b, t] = tokens.shape;
      const padId = this.transformer.cfg.padId;
      const m = Float32Array.from(tokenMask(tokens, opts, padId));
      const counts = Float32Array.from({ length: b }, (_, i) => Math.max(1, m.subarray(i * t, (i + 1) * t).reduce((a, x) => a + x, 0)));
      const out = scope(() => div(sum(mul(last, Tensor.from(this.device, m, [b, t, 1])), 1), Tensor.from(this.device, counts, [b, 1])));
      last.dispose();
      return out;
    }
    const first = slice(last, 1, 0, 1);
    const out = squeeze(first, 1);
    last.dispose();
    first.dispose();
    return out;
  }

  project(pooled: Tensor): Tensor {
    return linear(pooled, this.get('proj.weight'));
  }

  encode(tokens: TokenBatch, opts: BertForwardOptions = {}): Tensor {
    const p = this.pooled(tokens, opts);
    const out = this.project(p);
    p.dispose();
    return out;
  }
}
