// open_clip CustomTextCLIP: image tower + text tower + learnable logit scale (and bias).
import { ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { Module } from '../nn/module.js';
import { add, concat, exp, full, l2Normalize, matmul, mean, mul, reshape, slice, softmax, squeeze, transpose, unsqueeze } from '../ops/index.js';
import type { Tensor } from '../tensor/tensor.js';
import type { TextTower, TokenBatch } from './text-transformer.js';

/**
 * An image tower (HlipVisualEncoder fits): `features` are the unnormalised embeddings [B, E] (or
 * [B, P, E] with P prefix heads), `pooled` the trunk's pooled output, `tokens` forward_features.
 * Every returned tensor is the caller's.
 */
export interface ImageTower {
  forward(image: Tensor, opts?: { tokens?: boolean }): { features: Tensor; pooled: Tensor; tokens?: Tensor };
}

/** Turns strings into padded token batches for a text tower. */
export interface TextTokenizer {
  encodeBatch(texts: readonly string[]): TokenBatch;
}

export interface ClipOptions {
  /** Initial log-scale (open_clip: ln(1/0.07); SigLIP: ln 10). */
  initLogitScale?: number;
  /** Create a `logit_bias` scalar with this value (SigLIP −10; 2026 dual models ln(1/0.07)); null = none. */
  initLogitBias?: number | null;
}

export interface ClipOutput {
  imageFeatures: Tensor;
  textFeatures: Tensor;
  /** exp(logit_scale), as open_clip returns it. */
  logitScale: Tensor;
  logitBias: Tensor | null;
}

/**
 * open_clip `CustomTextCLIP`. State-dict names: `logit_scale`, `logit_bias` (when created), `visual.*`,
 * `text.*`. The image tower is optional so a text-only model (or a test) can be built.
 */
export class CustomTextCLIP extends Module {
  readonly visual: (Module & ImageTower) | null;
  readonly text: Module & TextTower;

  constructor(device: Device, visual: (Module & ImageTower) | null, text: Module & TextTower, opts: ClipOptions = {}) {
    super(device);
    const scale0 = opts.initLogitScale ?? Math.log(1 / 0.07);
    this.param('logit_scale', () => full(device, [], scale0));
    if (opts.initLogitBias !== undefined && opts.initLogitBias !== null) {
      const b0 = opts.initLogitBias;
      this.param('logit_bias', () => full(device, [], b0));
    }
    this.visual = visual ? this.child('visual', visual) : null;
    this.text = this.child('text', text);
  }

  get logitScaleParam(): Tensor {
    return this.get('logit_scale');
  }

  get logitBiasParam(): Tensor | null {
    return [...this.namedParameters()].some(([n]) => n === 'logit_bias') ? this.get('logit_bias') : null;
  }

  encodeImage(image: Tensor, opts: { normalize?: boolean } = {}): Tensor {
    if (!this.visual) throw new ShapeError('CustomTextCLIP: this model has no image tower');
    const o = this.visual.forward(image, { tokens: false });
    o.pooled.dispose();
    o.tokens?.dispose();
    const e = o.features;
    if (!opts.normalize) return e;
    const n = l2Normalize(e, -1);
    e.dispose();
    return n;
  }

  encodeText(tokens: TokenBatch, opts: { normalize?: boolean } = {}): Tensor {
    const e = this.text.encode(tokens);
    if (!opts.normalize) return e;
    const n = l2Normalize(e, -1);
    e.dispose();
    return n;
  }

  /** model(image, text) with output_dict=True: normalised features, exp(logit_scale), the bias. */
  forward(image: Tensor, tokens: TokenBatch): ClipOutput {
    const imageFeatures = this.encodeImage(image, { normalize: true });
    const textFeatures = this.encodeText(tokens, { normalize: true });
    const bias = this.logitBiasParam;
    return { imageFeatures, textFeatures, logitScale: exp(this.logitScaleParam), logitBias: bias ? bias.retainHandle() : null };
  }

  /** get_logits: exp(logit_scale)·I·Tᵀ (+ bias) and its transpose. */
  logits(imageFeatures: Tensor, textFeatures: Tensor): { logitsPerImage: Tensor; logitsPerText: Tensor } {
    const s = exp(this.logitScaleParam);
    const tt = transpose(textFeatures);
    const raw = matmul(imageFeatures, tt);
    let lpi = mul(raw, s);
    for (const t of [s, tt, raw]) t.dispose();
    const bias = this.logitBiasParam;
    if (bias) {
      const b = add(lpi, bias);
      lpi.dispose();
      lpi = b;
    }
    return { logitsPerImage: lpi, logitsPerText: transpose(lpi) };
  }

  /**
   * open_clip `build_zero_shot_classifier`: for each class, every template's text is encoded and
   * normalised, the embeddings are averaged and renormalised; the columns form W [E, K].
   */
  zeroShotClassifier(tokenizer: TextTokenizer, classes: readonly string[], templates: readonly ((c: string) => string)[] = [(c) => c]): Tensor {
    if (!classes.length || !templates.length) throw new ShapeError('zero-shot classifier needs at least one class and one template');
    const cols: Tensor[] = [];
    for (const c of classes) {
      const e = this.encodeText(tokenizer.encodeBatch(templates.map((t) => t(c))), { normalize: true });
      const m = mean(e, 0);
      const n = l2Normalize(m, -1);
      cols.push(unsqueeze(n, 0));
      for (const t of [e, m, n]) t.dispose();
    }
    const w = concat(cols, 0);
    for (const c of cols) c.dispose();
    const wt = transpose(w);
    w.dispose();
    return wt;
  }

  /** exp(logit_scale)·f_img @ W, [B, K]. */
  zeroShotLogits(imageFeatures: Tensor, classifier: Tensor): Tensor {
    const s = exp(this.logitScaleParam);
    const raw = matmul(imageFeatures, classifier);
    const out = mul(raw, s);
    s.dispose();
    raw.dispose();
    return out;
  }

  /**
   * HLIP's prompt-pair zero-shot scores: one (negative, positive) prompt pair per finding, each
   * prompt a class of its own; p = softmax([l_neg, l_pos])[1] per finding, [B, findings].
   */
  promptPairScores(tokenizer: TextTokenizer, imageFeatures: Tensor, pairs: readonly (readonly [string, string])[], template: (c: string) => string = (c) => c): Tensor {
    const w = this.zeroShotClassifier(tokenizer, pairs.flat(), [template]);
    const logits = this.zeroShotLogits(imageFeatures, w);
    w.dispose();
    const b = imageFeatures.shape[0] as number;
    const l3 = reshape(logits, [b, pairs.length, 2]);
    logits.dispose();
    const p = softmax(l3, -1);
    l3.dispose();
    const pos = slice(p, 2, 1, 2);
    p.dispose();
    const out = squeeze(pos, 2);
    pos.dispose();
    return out;
  }
}
