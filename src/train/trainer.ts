// One optimisation step of CustomTextCLIP as HLIP trains it (hlip-spec §4, delta §2): forward,
// contrastive loss, backward, optional gradient clipping, AdamW at the schedule's rate, logit-scale
// clamp. open_clip's --accum-freq (feature cache) and HLIP's --accum-batch (concatenated loader
// batches) are both supported; randomness is a pure function of (seed, step, micro-batch), so a
// resumed run repeats an uninterrupted one exactly.
import { DTypeError, HlipError, ShapeError } from '../errors.js';
import type { CustomTextCLIP } from '../models/clip.js';
import { tokenBatch } from '../models/text-transformer.js';
import type { HostTensor } from '../nn/module.js';
import { autocast, cast, concat, l2Normalize, slice } from '../ops/index.js';
import type { AdamW, AdamWStateDict } from '../optim/adamw.js';
import { philox4x32, seedKey } from '../tensor/rng.js';
import { noGrad, scope, withoutScope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import type { JsonValue, TrainerRngState, TrainingCheckpoint } from './checkpoint.js';
import { clipGradNorm } from './clip-grad.js';
import { GradScaler, type GradScalerOptions, type GradScalerState } from './grad-scaler.js';
import { clampLogitScale, clipLoss, dualClipLoss, sigLipLoss } from './losses.js';
import { createOptimizer, lockTextTower, type LockTextOptions, type OptimizerOptions, type ParamGroups } from './param-groups.js';
import { constLr, type LrSchedule } from './schedule.js';

/**
 * One loader batch as the trainer needs it; the data loader's batch type only has to provide these
 * fields (extra fields are ignored).
 */
export interface TrainBatch {
  /** Volumes, row-major [B, S, D, H, W] (S scans per study, one channel). */
  readonly images: Float32Array;
  readonly shape: readonly [number, number, number, number, number];
  /** Token ids, row-major [B, T] (T = ids.length / B; padding id 0 unless `padId` says otherwise). */
  readonly ids: Int32Array;
  /** The dual loss's second text (the full report), [B, T2]; required for loss 'dual' with two image heads. */
  readonly reportIds?: Int32Array;
}

export type LossName = 'clip' | 'siglip' | 'dual';

/** What a forward pass may draw from. Identical for the cached and the gradient pass of a micro-batch. */
export interface ForwardContext {
  /** Optimizer step (0-based). */
  readonly step: number;
  /** Micro-batch index within the step (accum-freq). */
  readonly micro: number;
  /** Uniform [0, 1) draws (scan-position sampling, drop path): Philox at (draw, step, micro). */
  readonly random: () => number;
  /** A u32 seed for GPU-side or counter-based randomness (dropout, patch dropout) of this micro-batch. */
  readonly seed: number;
}

/**
 * Image tower call: returns the unnormalised embeddings ([B, E] or [B, P, E]); the trainer
 * normalises. The default runs `model.visual.forward(image, { tokens: false, random, seed,
 * patchDropout })` (HlipVisualEncoder's options; `patchDropout` only when the trainer sets it).
 */
export type ImageEncoder = (model: CustomTextCLIP, image: Tensor, ctx: ForwardContext) => Tensor;

export interface StepMetrics {
  /** Optimizer step (0-based: the schedule step whose rate was used). */
  step: number;
  lr: number;
  /** Loss of the step (with accum-freq: the last micro-batch's, which open_clip logs). */
  loss: number;
  /** exp(logit_scale) the loss used. */
  logitScale: number;
  /** Global gradient 2-norm before clipping (unscaled; inf/NaN on a skipped amp step); null when not tracked. */
  gradNorm: number | null;
  /** precision 'amp': the loss scale this step used; null otherwise. */
  lossScale: number | null;
  /** precision 'amp': the step found an inf/NaN gradient and was skipped (weights unchanged). */
  skipped: boolean;
  /** Wall time per step, averaged over the steps since the previous readback. */
  stepMs: number;
  /** Studies in the contrastive batch (accum_freq · accum_batch · B). */
  samples: number;
}

export interface TrainerOptions extends OptimizerOptions {
  /** Contrastive loss (default 'clip'). 'siglip' needs a model with logit_bias; 'dual' (2026) uses it as the report log-scale. */
  loss?: LossName;
  /** Rate of each step (default: constant `lr`). The same rate goes to every parameter group, as open_clip does. */
  schedule?: LrSchedule;
  /** `--accum-freq` (default 1). */
  accumFreq?: number;
  /** `--accum-batch` (default 1). */
  accumBatch?: number;
  /** `--grad-clip-norm` (default null: no clipping). */
  gradClipNorm?: number | null;
  /** Compute the gradient norm for the metrics even without clipping (default true). */
  trackGradNorm?: boolean;
  /** Run seed (default 0). */
  seed?: number;
  /** `--lock-text` with its options; null/undefined = text tower trained. */
  lockText?: LockTextOptions | null;
  /** Read the metrics back every N steps (default 1); StepMetrics arrive at that rate. */
  metricsEvery?: number;
  onMetrics?: (m: StepMetrics) => void;
  /** `--force-patch-dropout`: patch dropout rate for the default image encoder (default: the visual config's). */
  patchDropout?: number;
  /** Token id used to pad when batches of different text lengths are joined (default 0). */
  padId?: number;
  encodeImage?: ImageEncoder;
  /**
   * `--precision`: 'fp32' (default) or 'amp' — f32 master weights and AdamW state, forward products and
   * attention in f16 under autocast (src/ops/autocast.ts), dynamic loss scaling (GradScaler). On an
   * adapter without shader-f16, 'amp' falls back to 'fp32' with a warning (see `precision`).
   */
  precision?: Precision;
  /** GradScaler settings for 'amp' (torch defaults: 2^16, ×2 every 2000 good steps, ×0.5 on inf/NaN). */
  gradScaler?: GradScalerOptions;
  /**
   * `--grad-checkpointing`: every transformer block of the image and text towers keeps only its input
   * and is re-run during backward (towers with a `gradCheckpointing` switch; default false).
   */
  gradCheckpointing?: boolean;
  /** Where warnings go (the amp fallback); default console.warn. */
  onWarning?: (message: string) => void;
}

/** Training precisions (open_clip `--precision` values this trainer implements). */
export type Precision = 'fp32' | 'amp';

/** The trainer's part of a checkpoint (the model weights are the model's). */
export interface TrainerState {
  step: number;
  rng: TrainerRngState;
  optimizer: AdamWStateDict;
  optimizerParams: string[];
  /** GradScaler state of an 'amp' run (null otherwise). */
  scaler?: GradScalerState | null;
}

/** Extra checkpoint fields the caller owns. */
export interface CheckpointExtras {
  epoch?: number;
  loader?: JsonValue;
  config?: JsonValue;
}

/** Loader batches joined into one forward batch (see joinBatches). */
export interface JoinedBatch {
  images: Float32Array;
  shape: [number, number, number, number, number];
  ids: Int32Array;
  T: number;
  reportIds: Int32Array | null;
  T2: number;
}

interface Features {
  image: Tensor;
  text: Tensor;
  report: Tensor | null;
}

interface Pending {
  step: number;
  lr: number;
  samples: number;
  gradNorm: boolean;
}

// Philox counter words 3 (purpose) of the trainer's draws; the data pipeline uses its own space.
const PURPOSE_RANDOM = 0x7452_0001;
const PURPOSE_SEED = 0x7452_0002;
const METRIC_COLS = 5;

function defaultEncodeImage(patchDropout: number | undefined): ImageEncoder {
  return (model, image, ctx) => {
    if (!model.visual) throw new ShapeError('Trainer: the model has no image tower');
    // HlipVisualEncoder's VisualForwardOptions; other towers ignore the extra fields.
    const opts = { tokens: false, random: ctx.random, seed: ctx.seed, ...(patchDropout !== undefined ? { patchDropout } : {}) };
    const o = model.visual.forward(image, opts);
    o.pooled.dispose();
    o.tokens?.dispose();
    return o.features;
  };
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new HlipError('config', `${what} must be a positive integer, got ${v}`);
  return v;
}

/** Row-major [B, T] id blocks joined along B, each padded on the right to the longest T. */
function joinIds(blocks: readonly { ids: Int32Array; B: number }[], padId: number): { ids: Int32Array; T: number } {
  const T = Math.max(...blocks.map((b) => b.ids.length / b.B));
  const B = blocks.reduce((a, b) => a + b.B, 0);
  const ids = new Int32Array(B * T).fill(padId);
  let row = 0;
  for (const b of blocks) {
    const t = b.ids.length / b.B;
    for (let i = 0; i < b.B; i++, row++) ids.set(b.ids.subarray(i * t, (i + 1) * t), row * T);
  }
  return { ids, T };
}

function checkBatch(b: TrainBatch, k: number): void {
  const [B, S, D, H, W] = b.shape;
  if (b.shape.length !== 5 || !b.shape.every((d) => Number.isInteger(d) && d > 0)) throw new ShapeError(`batch ${k}: shape [${b.shape.join(', ')}] must be [B, S, D, H, W]`);
  if (b.images.length !== B * S * D * H * W) throw new ShapeError(`batch ${k}: ${b.images.length} voxels do not fill [${b.shape.join(', ')}]`);
  if (b.ids.length === 0 || b.ids.length % B !== 0) throw new ShapeError(`batch ${k}: ${b.ids.length} token ids are not B = ${B} rows`);
  if (b.reportIds && (b.reportIds.length === 0 || b.reportIds.length % B !== 0)) throw new ShapeError(`batch ${k}: ${b.reportIds.length} report ids are not B = ${B} rows`);
}

/** HLIP --accum-batch: consecutive loader batches concatenated along B into one forward batch. */
export function joinBatches(batches: readonly TrainBatch[], padId = 0): JoinedBatch {
  batches.forEach(checkBatch);
  const first = batches[0];
  if (!first) throw new ShapeError('joinBatches: no batches');
  const inner = first.shape.slice(1).join();
  for (const b of batches) if (b.shape.slice(1).join() !== inner) throw new ShapeError(`accum-batch: batches of [${first.shape.join(', ')}] and [${b.shape.join(', ')}] cannot be joined (same S, D, H, W needed)`);
  if (batches.some((b) => !!b.reportIds !== !!first.reportIds)) throw new ShapeError('accum-batch: some batches have report ids and some do not');
  const B = batches.reduce((a, b) => a + b.shape[0], 0);
  const images = batches.length === 1 ? first.images : new Float32Array(batches.reduce((a, b) => a + b.images.length, 0));
  if (batches.length > 1) {
    let at = 0;
    for (const b of batches) {
      images.set(b.images, at);
      at += b.images.length;
    }
  }
  const text = joinIds(batches.map((b) => ({ ids: b.ids, B: b.shape[0] })), padId);
  const rep = first.reportIds ? joinIds(batches.map((b) => ({ ids: b.reportIds as Int32Array, B: b.shape[0] })), padId) : null;
  return { images, shape: [B, first.shape[1], first.shape[2], first.shape[3], first.shape[4]], ids: text.ids, T: text.T, reportIds: rep?.ids ?? null, T2: rep?.T ?? 0 };
}

/**
 * Drives training of a CustomTextCLIP: `await trainer.step(batches)` with `batchesPerStep` loader
 * batches per optimizer step. GPU work of a step is recorded without host waits; the only readback
 * is the metrics row every `metricsEvery` steps. Live GPU memory is flat across steps: everything a
 * step creates is released by its scope except the parameters and AdamW moments.
 */
export class Trainer {
  readonly model: CustomTextCLIP;
  readonly optimizer: AdamW;
  readonly groups: ParamGroups;
  readonly loss: LossName;
  readonly accumFreq: number;
  readonly accumBatch: number;
  private readonly opts: TrainerOptions;
  private readonly schedule: LrSchedule;
  private readonly encodeImage: ImageEncoder;
  private readonly trainable: Tensor[];
  private readonly metricsEvery: number;
  private seed: number;
  private stepCount = 0;
  private history: Tensor;
  private pending: Pending[] = [];
  private windowStart = 0;
  /** The precision in effect ('amp' requested on an adapter without f16 runs 'fp32'). */
  readonly precision: Precision;
  /** The loss scaler of an 'amp' run. */
  readonly scaler: GradScaler | null;

  constructor(model: CustomTextCLIP, opts: TrainerOptions = {}) {
    this.model = model;
    this.opts = opts;
    this.loss = opts.loss ?? 'clip';
    this.accumFreq = positiveInt(opts.accumFreq ?? 1, 'accum_freq');
    this.accumBatch = positiveInt(opts.accumBatch ?? 1, 'accum_batch');
    this.metricsEvery = positiveInt(opts.metricsEvery ?? 1, 'metricsEvery');
    const seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new HlipError('config', `seed must be a non-negative integer, got ${seed}`);
    this.seed = seed;
    if (this.loss === 'siglip' && !model.logitBiasParam) throw new HlipError('config', 'SigLIP loss needs a model with logit_bias (initLogitBias −10)');
    if (opts.lockText) lockTextTower(model, opts.lockText);
    const { optimizer, groups } = createOptimizer(model, opts);
    this.optimizer = optimizer;
    this.groups = groups;
    this.trainable = optimizer.paramGroups.flatMap((g) => [...g.params]);
    this.schedule = opts.schedule ?? constLr(opts.lr ?? optimizer.paramGroups[0]?.lr ?? 5e-4);
    this.encodeImage = opts.encodeImage ?? defaultEncodeImage(opts.patchDropout);
    const precision = opts.precision ?? 'fp32';
    if (precision !== 'fp32' && precision !== 'amp') throw new HlipError('config', `precision must be 'fp32' or 'amp', got '${String(precision)}'`);
    if (precision === 'amp' && !model.device.caps.f16) {
      // A config written for a GPU with f16 still trains here, in f32 (no loss scaling needed then).
      (opts.onWarning ?? ((m: string) => console.warn(m)))("precision 'amp' needs the shader-f16 feature, which this adapter lacks: training in fp32 instead");
      this.precision = 'fp32';
    } else this.precision = precision;
    this.scaler = this.precision === 'amp' ? new GradScaler(model.device, opts.gradScaler) : null;
    if (opts.gradCheckpointing !== undefined) setGradCheckpointing(model, opts.gradCheckpointing);
    this.history = withoutScope(() => Tensor.empty(model.device, [this.metricsEvery, METRIC_COLS], 'f32'));
  }

  /** Runs a forward piece under f16 autocast in an 'amp' run (as is otherwise). */
  private autocast<T>(fn: () => T): T {
    return this.precision === 'amp' ? autocast(fn) : fn();
  }

  /** Loader batches one optimizer step consumes (accum_freq · accum_batch). */
  get batchesPerStep(): number {
    return this.accumFreq * this.accumBatch;
  }

  /** Optimizer steps taken so far (the next step's schedule index). */
  get globalStep(): number {
    return this.stepCount;
  }

  /** The context of micro-batch `micro` of step `step`: a fresh generator each call, so re-runs draw the same. */
  forwardContext(step: number, micro: number): ForwardContext {
    const [k0, k1] = seedKey(this.seed);
    const w = new Uint32Array(4);
    let i = 0;
    const random = () => {
      philox4x32(i++, step, micro, PURPOSE_RANDOM, k0, k1, w);
      return ((w[0] as number) * 2097152 + ((w[1] as number) >>> 11)) / 9007199254740992;
    };
    const seed = philox4x32(0, step, micro, PURPOSE_SEED, k0, k1)[0] as number;
    return { step, micro, random, seed };
  }

  private microBatches(batches: readonly TrainBatch[]): JoinedBatch[] {
    if (batches.length !== this.batchesPerStep) {
      throw new ShapeError(`a step takes accum_freq·accum_batch = ${this.accumFreq}·${this.accumBatch} = ${this.batchesPerStep} loader batches, got ${batches.length}`);
    }
    const pad = this.opts.padId ?? 0;
    return Array.from({ length: this.accumFreq }, (_, j) => joinBatches(batches.slice(j * this.accumBatch, (j + 1) * this.accumBatch), pad));
  }

  /** Normalised features of one micro-batch (with the tape on unless the caller is under noGrad). */
  private features(m: JoinedBatch, image: Tensor, ctx: ForwardContext): Features {
    return scope(() => {
      const emb = this.encodeImage(this.model, image, ctx);
      const img = l2Normalize(emb, -1);
      const B = m.shape[0];
      if (this.loss === 'dual' && m.reportIds) {
        // One text forward for sentences and reports, as the reference does, then split.
        const both = joinIds([{ ids: m.ids, B }, { ids: m.reportIds, B }], this.opts.padId ?? 0);
        const t = this.model.encodeText(tokenBatch(both.ids, [2 * B, both.T]), { normalize: true });
        return { image: img, text: slice(t, 0, 0, B), report: slice(t, 0, B, 2 * B) };
      }
      return { image: img, text: this.model.encodeText(tokenBatch(m.ids, [B, m.T]), { normalize: true }), report: null };
    });
  }

  private lossOf(f: Features): { loss: Tensor; scale: Tensor } {
    const ls = this.model.logitScaleParam;
    const lb = this.model.logitBiasParam;
    if (this.loss === 'siglip') {
      const r = sigLipLoss(f.image, f.text, ls, lb as Tensor);
      return { loss: r.loss, scale: r.scale };
    }
    if (this.loss === 'dual') {
      const r = dualClipLoss(f.image, f.text, f.report, ls, lb);
      return { loss: r.loss, scale: r.sentence.scale };
    }
    const r = clipLoss(f.image, f.text, ls, lb);
    return { loss: r.loss, scale: r.scale };
  }

  /**
   * Forward and backward of one step's batches, leaving the summed gradients on the parameters
   * (nothing is stepped). accum_freq = 1: one forward over the joined batch. accum_freq > 1
   * (open_clip): features of every micro-batch are computed without gradient, then each
   * micro-batch is run again with gradient and its features replace its cached slot, the loss over
   * all accum_freq micro-batches is back-propagated; gradients add up over the micro-batches. Returns
   * the last loss and its exp(logit_scale) (the caller's to dispose).
   */
  accumulateGradients(batches: readonly TrainBatch[], step = this.stepCount): { loss: Tensor; scale: Tensor } {
    const micro = this.microBatches(batches);
    this.model.train(true);
    const dev = this.model.device;
    return scope(() => {
      const images = micro.map((m) => Tensor.from(dev, m.images, [m.shape[0], m.shape[1], 1, m.shape[2], m.shape[3], m.shape[4]]));
      const cached = micro.length > 1 ? noGrad(() => this.autocast(() => micro.map((m, j) => this.features(m, images[j] as Tensor, this.forwardContext(step, j))))) : null;
      let last: { loss: Tensor; scale: Tensor } | null = null;
      for (let j = 0; j < micro.length; j++) {
        const m = micro[j] as JoinedBatch;
        last = scope(() => {
          const out = this.autocast(() => {
            const fresh = this.features(m, images[j] as Tensor, this.forwardContext(step, j));
            let all = fresh;
            if (cached) {
              const pick = (k: keyof Features) => concat(cached.map((c, i) => (i === j ? fresh[k] : c[k]) as Tensor), 0);
              all = { image: pick('image'), text: pick('text'), report: fresh.report ? pick('report') : null };
            }
            return this.lossOf(all);
          });
          // amp: scaler.scale(loss).backward(), the scale seeding the loss gradient.
          out.loss.backward(this.scaler ? this.scaler.seed() : undefined);
          return j === micro.length - 1 ? { loss: out.loss.detach(), scale: out.scale.detach() } : null;
        });
      }
      if (!last) throw new HlipError('autograd', 'no micro-batch ran');
      return last;
    });
  }

  /**
   * One optimizer step from `batchesPerStep` loader batches. Resolves at once unless this step
   * completes a metrics window, in which case the metrics are read back and reported first.
   */
  async step(batches: readonly TrainBatch[]): Promise<void> {
    this.runStep(batches);
    if (this.pending.length >= this.metricsEvery) await this.flushMetrics();
  }

  private runStep(batches: readonly TrainBatch[]): void {
    if (this.pending.length >= this.metricsEvery) throw new HlipError('config', 'Trainer.step: await the previous step before starting the next');
    if (!this.pending.length) this.windowStart = performance.now();
    const step = this.stepCount;
    const lr = this.schedule(step);
    if (!Number.isFinite(lr)) throw new HlipError('config', `the schedule gave lr ${lr} at step ${step}`);
    for (const g of this.optimizer.paramGroups) g.lr = lr;
    const clip = this.opts.gradClipNorm ?? null;
    const withNorm = clip !== null || (this.opts.trackGradNorm ?? true);
    const samples = batches.reduce((a, b) => a + (b.shape[0] ?? 0), 0);
    scope(() => {
      const { loss, scale } = this.accumulateGradients(batches, step);
      let norm: Tensor | null = null;
      let amp: Tensor | null = null;
      if (this.scaler) {
        // Unscale, clip, check for inf/NaN and update the scale in one kernel; AdamW skips on its own.
        const r = this.scaler.unscaleAndUpdate(this.trainable, clip);
        this.optimizer.step(r.gate);
        amp = r.values;
        norm = amp.view([], [], amp.offset);
      } else {
        norm = withNorm ? clipGradNorm(this.trainable, clip) : null;
        this.optimizer.step();
      }
      this.optimizer.zeroGrad();
      clampLogitScale(this.model.logitScaleParam);
      // The 2026 dual loss uses logit_bias as the report log-scale and clamps it too; SigLIP's bias is not clamped.
      const lb = this.model.logitBiasParam;
      if (this.loss === 'dual' && lb) clampLogitScale(lb);
      const lossScale = amp ? amp.view([], [], amp.offset + 3) : null;
      const skipped = amp ? amp.view([], [], amp.offset + 2) : null;
      this.recordRow(this.pending.length, [loss, scale, norm, lossScale, skipped]);
    });
    this.pending.push({ step, lr, samples, gradNorm: withNorm });
    this.stepCount++;
  }

  /** Copies the step's scalars into its row of the metrics buffer (GPU to GPU, no wait). */
  private recordRow(row: number, values: (Tensor | null)[]): void {
    const dev = this.model.device;
    values.forEach((v, c) => {
      if (!v) return;
      if (v.size !== 1) throw new ShapeError(`metric ${c} is not a scalar`);
      const f = v.dtype === 'f32' ? v : v.dtype === 'f16' ? cast(v, 'f32') : null;
      if (!f) throw new DTypeError(`metric ${c} has dtype ${v.dtype}`);
      dev.copyBuffer(f.buffer, f.offset * 4, this.history.buffer, (row * METRIC_COLS + c) * 4, 4);
    });
  }

  /** Reads back the metrics of the steps since the last readback (one read) and reports them. */
  async flushMetrics(): Promise<StepMetrics[]> {
    const batch = this.pending.splice(0, this.pending.length);
    if (!batch.length) return [];
    const bytes = await this.model.device.read(this.history.buffer, 0, batch.length * METRIC_COLS * 4);
    const raw = new Float32Array(bytes);
    const now = performance.now();
    const stepMs = (now - this.windowStart) / batch.length;
    this.windowStart = now;
    const out = batch.map((p, i): StepMetrics => ({
      step: p.step,
      lr: p.lr,
      loss: raw[i * METRIC_COLS] as number,
      logitScale: raw[i * METRIC_COLS + 1] as number,
      gradNorm: p.gradNorm ? (raw[i * METRIC_COLS + 2] as number) : null,
      lossScale: this.scaler ? (raw[i * METRIC_COLS + 3] as number) : null,
      skipped: this.scaler ? raw[i * METRIC_COLS + 4] !== 0 : false,
      stepMs,
      samples: p.samples,
    }));
    for (const m of out) this.opts.onMetrics?.(m);
    return out;
  }

  /** Step count, RNG and optimizer state (moments read back). Pending metrics are flushed first. */
  async state(): Promise<TrainerState> {
    await this.flushMetrics();
    return {
      step: this.stepCount,
      rng: { algorithm: 'philox4x32-10', seed: this.seed },
      optimizer: await this.optimizer.stateDict(),
      optimizerParams: [...this.groups.names],
      ...(this.scaler ? { scaler: await this.scaler.stateDict() } : {}),
    };
  }

  /** A full training checkpoint: model state dict, trainer state and the caller's epoch / loader state / config. */
  async checkpoint(extra: CheckpointExtras = {}): Promise<TrainingCheckpoint> {
    const s = await this.state();
    const model = new Map<string, HostTensor>();
    for (const [name, t] of this.model.stateDict()) model.set(name, { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) });
    return { model, ...s, epoch: extra.epoch ?? 0, loader: extra.loader ?? null, config: extra.config ?? null };
  }

  /**
   * Restores the optimizer, step count and seed (and the model weights when `c` carries them,
   * as a TrainingCheckpoint does). Everything is checked before anything changes; errors name
   * `source` (the checkpoint file).
   */
  restore(c: TrainerState & { model?: ReadonlyMap<string, HostTensor> }, source = '<checkpoint>'): void {
    const fail = (msg: string): never => {
      throw new HlipError('config', msg, { source });
    };
    const names = this.groups.names;
    if (c.optimizerParams.length !== names.length || c.optimizerParams.some((n, i) => n !== names[i])) {
      const i = c.optimizerParams.findIndex((n, k) => n !== names[k]);
      fail(`optimizer parameters do not match this model/config (${c.optimizerParams.length} saved, ${names.length} trainable; first difference at #${i < 0 ? Math.min(c.optimizerParams.length, names.length) : i}: '${c.optimizerParams[i] ?? '—'}' vs '${names[i] ?? '—'}'); was lock-text set differently?`);
    }
    c.optimizer.state.forEach((s, i) => {
      const p = this.trainable[i] as Tensor;
      if (s && (s.expAvg.length !== p.size || s.expAvgSq.length !== p.size)) fail(`optimizer state of '${names[i]}' has ${s.expAvg.length} elements, the parameter ${p.size}`);
    });
    if (c.model) {
      const own = this.model.stateDict();
      const missing = [...own.keys()].filter((k) => !c.model?.has(k));
      const unexpected = [...c.model.keys()].filter((k) => !own.has(k));
      if (missing.length || unexpected.length) fail(`model weights do not match: missing ${missing.slice(0, 5).join(', ') || 'none'}; unexpected ${unexpected.slice(0, 5).join(', ') || 'none'}`);
      for (const [k, t] of own) {
        const h = c.model.get(k) as HostTensor;
        if (h.shape.length !== t.shape.length || h.shape.some((d, i) => d !== t.shape[i]) || h.data.length !== t.size) fail(`'${k}': saved shape [${h.shape.join(', ')}] vs model [${t.shape.join(', ')}]`);
      }
    }
    if (!Number.isSafeInteger(c.step) || c.step < 0) fail(`step ${c.step} is not a non-negative integer`);
    if (this.scaler && c.scaler) {
      try {
        GradScaler.validate(c.scaler);
      } catch (e) {
        fail((e as Error).message);
      }
    }
    try {
      if (c.model) this.model.loadStateDict(c.model);
      this.optimizer.loadStateDict(c.optimizer);
      // As open_clip: the scaler state is restored when both the run and the checkpoint have one.
      if (this.scaler && c.scaler) this.scaler.loadStateDict(c.scaler);
    } catch (e) {
      if (e instanceof HlipError && !e.source) throw new HlipError(e.kind, e.message, { source, cause: e });
      throw e;
    }
    this.stepCount = c.step;
    this.seed = c.rng.seed;
    this.pending = [];
  }

  /** Frees the optimizer moments and the metrics buffer (the model stays the caller's). */
  dispose(): void {
    this.optimizer.zeroGrad();
    this.optimizer.dispose();
    this.history.dispose();
    this.scaler?.dispose();
  }
}

/**
 * Switches per-block gradient checkpointing on the model's towers that support it (HlipVisualEncoder,
 * BertTextEncoder, TextTransformer); other towers are left as they are.
 */
export function setGradCheckpointing(model: CustomTextCLIP, on: boolean): void {
  for (const tower of [model.visual, model.text]) {
    if (tower && 'gradCheckpointing' in tower) (tower as { gradCheckpointing: boolean }).gradCheckpointing = on;
  }
}
