// open_clip's built-in TextTransformer (causal pre-LN transformer, argmax/EOT pooling, projection).
import { ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { Module } from '../nn/module.js';
import { add, gather, layerNorm, linear, matmul, ones, randn, reshape, slice, zeros } from '../ops/index.js';
import { attention, WindowTable } from '../ops/attention.js';
import { checkpoint } from '../tensor/checkpoint.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** Token ids on the host, row-major [batch, length]. */
export interface TokenBatch {
  readonly ids: Int32Array;
  readonly shape: readonly [number, number];
}

/** A text tower: token ids → unnormalised embeddings [B, E]. */
export interface TextTower {
  readonly outputDim: number;
  readonly contextLength: number;
  encode(tokens: TokenBatch): Tensor;
}

export function tokenBatch(ids: ArrayLike<number>, shape: readonly [number, number]): TokenBatch {
  if (ids.length !== shape[0] * shape[1]) throw new ShapeError(`token batch: ${ids.length} ids do not fill ${fmt(shape)}`);
  return { ids: ids instanceof Int32Array ? ids : Int32Array.from(ids), shape };
}

export interface TextTransformerConfig {
  contextLength: number;
  vocabSize: number;
  width: number;
  heads: number;
  layers: number;
  /** Joint embedding size (text_projection [width, outputDim]). */
  outputDim: number;
  mlpRatio?: number;
  /** open_clip's LayerNorm eps (torch default 1e-5). */
  eps?: number;
  seed?: number;
}

/** Seeded normal parameter (the values only matter when not loading a checkpoint). */
function normal(dev: Device, shape: number[], std: number, seed: number): () => Tensor {
  return () => randn(dev, shape, seed, { std });
}

/**
 * `open_clip.transformer.TextTransformer` with its defaults (no CLS embedding, causal mask, 'argmax'
 * pooling, projection matrix without bias). Parameter names are the reference's relative to `text.`:
 * token_embedding.weight, positional_embedding, transformer.resblocks.<i>.{ln_1, attn.in_proj_*,
 * attn.out_proj.*, ln_2, mlp.c_fc.*, mlp.c_proj.*}, ln_final.*, text_projection.
 */
export class TextTransformer extends Module implements TextTower {
  readonly cfg: Required<TextTransformerConfig>;

  constructor(device: Device, config: TextTransformerConfig) {
    super(device);
    const cfg = { mlpRatio: 4, eps: 1e-5, seed: 0, ...config };
    this.cfg = cfg;
    const { width: w, layers, vocabSize, contextLength, outputDim } = cfg;
    if (w % cfg.heads !== 0) throw new ShapeError(`text transformer: width ${w} is not divisible by ${cfg.heads} heads`);
    const hidden = Math.round(w * cfg.mlpRatio);
    let seed = cfg.seed;
    // open_clip's init_parameters: std 0.02 / 0.01 tables, width-scaled block weights.
    const attnStd = w ** -0.5;
    const projStd = attnStd * (2 * layers) ** -0.5;
    const fcStd = (2 * w) ** -0.5;
    this.param('token_embedding.weight', normal(device, [vocabSize, w], 0.02, seed++));
    this.param('positional_embedding', normal(device, [contextLength, w], 0.01, seed++));
    for (let i = 0; i < layers; i++) {
      const p = `transformer.resblocks.${i}.`;
      this.param(`${p}ln_1.weight`, () => ones(device, [w]));
      this.param(`${p}ln_1.bias`, () => zeros(device, [w]));
      this.param(`${p}attn.in_proj_weight`, normal(device, [3 * w, w], attnStd, seed++));
      this.param(`${p}attn.in_proj_bias`, () => zeros(device, [3 * w]));
      this.param(`${p}attn.out_proj.weight`, normal(device, [w, w], projStd, seed++));
      this.param(`${p}attn.out_proj.bias`, () => zeros(device, [w]));
      this.param(`${p}ln_2.weight`, () => ones(device, [w]));
      this.param(`${p}ln_2.bias`, () => zeros(device, [w]));
      this.param(`${p}mlp.c_fc.weight`, normal(device, [hidden, w], fcStd, seed++));
      this.param(`${p}mlp.c_fc.bias`, () => zeros(device, [hidden]));
      this.param(`${p}mlp.c_proj.weight`, normal(device, [w, hidden], projStd, seed++));
      this.param(`${p}mlp.c_proj.bias`, () => zeros(device, [w]));
    }
    this.param('ln_final.weight', () => ones(device, [w]));
    this.param('ln_final.bias', () => zeros(device, [w]));
    this.param('text_projection', normal(device, [w, outputDim], attnStd, seed++));
  }

  get outputDim(): number {
    return this.cfg.outputDim;
  }

  get contextLength(): number {
    return this.cfg.contextLength;
  }

  /** Keep only each block's input and re-run the block in backward (open_clip set_grad_checkpointing). */
  gradCheckpointing = false;

  private blockParams(i: number): Tensor[] {
    const p = `transformer.resblocks.${i}.`;
    return [...this.namedParameters()].filter(([n]) => n.startsWith(p)).map(([, t]) => t);
  }

  /** Token features after ln_final, [B, T, width]. */
  features(tokens: TokenBatch): Tensor {
    const [b, t] = tokens.shape;
    const { width: w, heads, eps } = this.cfg;
    if (t > this.cfg.contextLength) throw new ShapeError(`text transformer: ${t} tokens exceed the context length ${this.cfg.contextLength}`);
    const rows = b * t;
    const tok = gather(this.get('token_embedding.weight'), tokens.ids, [rows]);
    const pos = slice(this.get('positional_embedding'), 0, 0, t);
    const tok3 = reshape(tok, [b, t, w]);
    const x3 = add(tok3, pos);
    let x = reshape(x3, [rows, w]);
    for (const h of [tok, pos, tok3, x3]) h.dispose();
    const windows = WindowTable.uniform(b, t);
    const block = (i: number, x: Tensor): Tensor => {
      const p = `transformer.resblocks.${i}.`;
      // x = x + out_proj(attn(ln_1(x))), causal within each sequence.
      const h1 = layerNorm(x, this.get(`${p}ln_1.weight`), this.get(`${p}ln_1.bias`), eps);
      const qkv = linear(h1, this.get(`${p}attn.in_proj_weight`), this.get(`${p}attn.in_proj_bias`));
      const o = attention({ qkv }, { heads, causal: true, windows });
      const o2 = reshape(o, [rows, w]);
      const a = linear(o2, this.get(`${p}attn.out_proj.weight`), this.get(`${p}attn.out_proj.bias`));
      const x1 = add(x, a);
      // x = x + c_proj(gelu(c_fc(ln_2(x)))).
      const h2 = layerNorm(x1, this.get(`${p}ln_2.weight`), this.get(`${p}ln_2.bias`), eps);
      const f = linear(h2, this.get(`${p}mlp.c_fc.weight`), this.get(`${p}mlp.c_fc.bias`), { activation: 'gelu' });
      const m = linear(f, this.get(`${p}mlp.c_proj.weight`), this.get(`${p}mlp.c_proj.bias`));
      const x2 = add(x1, m);
      for (const h of [h1, qkv, o, o2, a, x1, h2, f, m]) h.dispose();
      return x2;
    };
    for (let i = 0; i < this.cfg.layers; i++) {
      // open_clip set_grad_checkpointing(): each residual block keeps only its input for backward.
      const y = this.gradCheckpointing ? checkpoint((xs) => block(i, xs[0] as Tensor), [x], { params: this.blockParams(i) }) : block(i, x);
      x.dispose();
      x = y;
    }
    const y = layerNorm(x, this.get('ln_final.weight'), this.get('ln_final.bias'), eps);
    x.dispose();
    const y3 = reshape(y, [b, t, w]);
    y.dispose();
    return y3;
  }

  /** Pooled, projected text embedding [B, outputDim] (not normalised). */
  encode(tokens: TokenBatch): Tensor {
    const [b, t] = tokens.shape;
    const feats = this.features(tokens);
    const rows = reshape(feats, [b * t, this.cfg.width]);
    feats.dispose();
    const pooled = gather(rows, eotRows(tokens));
    rows.dispose();
    const out = matmul(pooled, this.get('text_projection'));
    pooled.dispose();
    return out;
  }
}

/** Flat row index of each sequence's argmax token (the first maximum, as torch.argmax): the EOT token. */
export function eotRows(tokens: TokenBatch): Int32Array {
  const [b, t] = tokens.shape;
  const out = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    let best = 0;
    for (let j = 1; j < t; j++) if ((tokens.ids[i * t + j] as number) > (tokens.ids[i * t + best] as number)) best = j;
    out[i] = i * t + best;
  }
  return out;
}
