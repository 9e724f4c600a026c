// Contrastive losses of open_clip (loss.py, single process) and HLIP's 2026 dual loss.
import { DTypeError, ShapeError } from '../errors.js';
import { add, crossEntropy, exp, logSigmoid, matmul, mul, scale, slice, squeeze, sum, transpose, unaryKernel } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { fmt } from '../tensor/shape.js';

/** open_clip's initial log-scale ln(1/0.07). */
export const INIT_LOGIT_SCALE = Math.log(1 / 0.07);
/** The clamp applied to the log-scale after every optimizer step: [0, ln 100]. */
export const MAX_LOGIT_SCALE = Math.log(100);
/** SigLIP initialisation: scale ln 10, bias −10. */
export const SIGLIP_INIT_LOGIT_SCALE = Math.log(10);
export const SIGLIP_INIT_LOGIT_BIAS = -10;

export interface ClipLossResult {
  loss: Tensor;
  /** exp(logitScale), the multiplier the loss used. */
  scale: Tensor;
  logitsPerImage: Tensor;
  logitsPerText: Tensor;
}

export interface SigLipLossResult {
  loss: Tensor;
  scale: Tensor;
  logits: Tensor;
}

export interface DualClipLossResult {
  loss: Tensor;
  sentence: ClipLossResult;
  /** Absent when the image features have a single prefix token (then only the sentence loss counts). */
  report: ClipLossResult | null;
}

function checkPair(img: Tensor, txt: Tensor, what: string): void {
  if (img.ndim !== 2 || txt.ndim !== 2 || img.shape[0] !== txt.shape[0] || img.shape[1] !== txt.shape[1]) {
    throw new ShapeError(`${what}: image features ${fmt(img.shape)} and text features ${fmt(txt.shape)} must both be [B, D]`);
  }
}

function checkScalar(t: Tensor, what: string): void {
  if (t.size !== 1) throw new ShapeError(`${what} must be a scalar, got ${fmt(t.shape)}`);
}

/** Host class indices 0..n-1 (the matching pair of each row). */
function arange(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/**
 * open_clip `ClipLoss` (world size 1): logits_per_image = s·I·Tᵀ (+ b), logits_per_text its
 * transpose, loss = (CE(logits_per_image, arange) + CE(logits_per_text, arange)) / 2 with
 * s = exp(logitScale). Features are expected L2-normalised already; gradients flow into the features,
 * the log-scale and the bias.
 */
export function clipLoss(imageFeatures: Tensor, textFeatures: Tensor, logitScale: Tensor, logitBias?: Tensor | null): ClipLossResult {
  checkPair(imageFeatures, textFeatures, 'clipLoss');
  checkScalar(logitScale, 'clipLoss logitScale');
  if (logitBias) checkScalar(logitBias, 'clipLoss logitBias');
  const b = imageFeatures.shape[0] as number;
  const s = exp(logitScale);
  const tt = transpose(textFeatures);
  const raw = matmul(imageFeatures, tt);
  tt.dispose();
  let logitsPerImage = mul(raw, s);
  raw.dispose();
  if (logitBias) {
    const biased = add(logitsPerImage, logitBias);
    logitsPerImage.dispose();
    logitsPerImage = biased;
  }
  // The transpose is exactly what s·T·Iᵀ computes (same products, same sums).
  const logitsPerText = transpose(logitsPerImage);
  const labels = arange(b);
  const ci = crossEntropy(logitsPerImage, labels);
  const ct = crossEntropy(logitsPerText, labels);
  const both = add(ci, ct);
  ci.dispose();
  ct.dispose();
  const loss = scale(both, 0.5);
  both.dispose();
  return { loss, scale: s, logitsPerImage, logitsPerText };
}

/**
 * open_clip `SigLipLoss` (world size 1): logits = s·I·Tᵀ + b, labels 2·eye − 1,
 * loss = −Σ logsigmoid(labels ⊙ logits) / B.
 */
export function sigLipLoss(imageFeatures: Tensor, textFeatures: Tensor, logitScale: Tensor, logitBias: Tensor): SigLipLossResult {
  checkPair(imageFeatures, textFeatures, 'sigLipLoss');
  checkScalar(logitScale, 'sigLipLoss logitScale');
  checkScalar(logitBias, 'sigLipLoss logitBias');
  const b = imageFeatures.shape[0] as number;
  const dev = imageFeatures.device;
  const s = exp(logitScale);
  const tt = transpose(textFeatures);
  const raw = matmul(imageFeatures, tt);
  tt.dispose();
  const scaled = mul(raw, s);
  raw.dispose();
  const logits = add(scaled, logitBias);
  scaled.dispose();
  const signs = new Float32Array(b * b).fill(-1);
  for (let i = 0; i < b; i++) signs[i * b + i] = 1;
  const labels = Tensor.from(dev, signs, [b, b], imageFeatures.dtype);
  const signed = mul(logits, labels);
  labels.dispose();
  const ls = logSigmoid(signed);
  signed.dispose();
  const total = sum(ls);
  ls.dispose();
  const loss = scale(total, -1 / b);
  total.dispose();
  return { loss, scale: s, logits };
}

/**
 * HLIP 2026 dual loss: 0.5·ClipLoss(I[:,0], T_sentence, exp(logitScale)) +
 * 0.5·ClipLoss(I[:,1], T_report, exp(logitBias)). `logitBias` is the report head's log-scale, not a
 * logit bias. Image features [B, 2, D]; with [B, 1, D] (or [B, D]) only the sentence loss is used, as
 * the reference loop does for single-prefix models.
 */
export function dualClipLoss(imageFeatures: Tensor, sentenceFeatures: Tensor, reportFeatures: Tensor | null, logitScale: Tensor, logitBias: Tensor | null): DualClipLossResult {
  const prefixes = imageFeatures.ndim === 2 ? 1 : (imageFeatures.shape[1] as number);
  if (imageFeatures.ndim !== 2 && (imageFeatures.ndim !== 3 || prefixes < 1 || prefixes > 2)) {
    throw new ShapeError(`dualClipLoss: image features must be [B, D], [B, 1, D] or [B, 2, D], got ${fmt(imageFeatures.shape)}`);
  }
  const head = (p: number) => (imageFeatures.ndim === 2 ? imageFeatures : squeeze(slice(imageFeatures, 1, p, p + 1), 1));
  const i0 = head(0);
  const sentence = clipLoss(i0, sentenceFeatures, logitScale);
  if (i0 !== imageFeatures) i0.dispose();
  if (prefixes === 1) return { loss: sentence.loss.retainHandle(), sentence, report: null };
  if (!reportFeatures || !logitBias) throw new ShapeError('dualClipLoss: two image heads need report features and the report log-scale');
  const i1 = head(1);
  const report = clipLoss(i1, reportFeatures, logitBias);
  i1.dispose();
  const both = add(sentence.loss, report.loss);
  const loss = scale(both, 0.5);
  both.dispose();
  return { loss, sentence, report };
}

/**
 * The reference's post-step clamp `logit_scale.clamp_(0, ln 100)`, in place on a parameter (no
 * tape). The 2026 dual models clamp their report log-scale (`logit_bias`) the same way.
 */
export function clampLogitScale(param: Tensor, lo = 0, hi = MAX_LOGIT_SCALE): void {
  checkScalar(param, 'clampLogitScale');
  if (param.dtype !== 'f32') throw new DTypeError(`clampLogitScale needs an f32 parameter, got ${param.dtype}`);
  // WebGPU cannot read and write one buffer in a dispatch: clamp into a temporary, copy back.
  const c = unaryKernel('clamp(a, alpha, beta)', param, lo, hi);
  param.device.copyBuffer(c.buffer, c.offset * 4, param.buffer, param.offset * 4, 4);
  c.dispose();
}
