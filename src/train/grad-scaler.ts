// torch.amp.GradScaler for the trainer's f16 mixed precision, entirely on the GPU: the loss gradient is
// seeded with the scale, one pass over the gradients (the clip-norm sum of squares) finds inf/NaN,
// one single-workgroup kernel turns that into the norm, the AdamW gradient coefficient (unscale and
// clip) and the skip flag, and updates the scale; AdamW reads the coefficient and the flag itself.
// No step ever waits for the host.
import { HlipError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { finishScaledNorm } from '../kernels/grad-scaler.js';
import type { DeviceGate } from '../optim/adamw.js';
import { withoutScope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { gradSumsqPartials } from './clip-grad.js';

/** torch.amp.GradScaler constructor arguments (defaults as torch). */
export interface GradScalerOptions {
  /** Default 2^16. */
  initScale?: number;
  /** Default 2. */
  growthFactor?: number;
  /** Default 0.5. */
  backoffFactor?: number;
  /** Steps without inf/NaN before the scale grows; default 2000. */
  growthInterval?: number;
}

/** GradScaler.state_dict() (torch keys: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker). */
export interface GradScalerState {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  growthTracker: number;
}

/** One step's outcome, on the GPU: [norm of the unscaled gradients, gradient coefficient, skip flag, scale used]. */
export interface ScaledStep {
  /** f32 [4]; the caller's to dispose. */
  readonly values: Tensor;
  /** What AdamW.step() takes to unscale, clip and skip (`values[1]`, `values[2]`). */
  readonly gate: DeviceGate;
}

function checkHyper(o: Required<GradScalerOptions>): void {
  if (!(o.initScale > 0 && Number.isFinite(o.initScale))) throw new HlipError('config', `GradScaler: the scale must be positive and finite, got ${o.initScale}`);
  if (!(o.growthFactor > 1)) throw new HlipError('config', `GradScaler: growth factor must be > 1, got ${o.growthFactor}`);
  if (!(o.backoffFactor > 0 && o.backoffFactor < 1)) throw new HlipError('config', `GradScaler: backoff factor must be in (0, 1), got ${o.backoffFactor}`);
  if (!Number.isInteger(o.growthInterval) || o.growthInterval < 1) throw new HlipError('config', `GradScaler: growth interval must be a positive integer, got ${o.growthInterval}`);
}

/**
 * Dynamic loss scaling with torch.amp.GradScaler semantics: scale 2^16 at start; a step with any
 * inf/NaN gradient is skipped (weights, moments and AdamW step counts unchanged) and the scale
 * multiplied by 0.5; after 2000 consecutive good steps it is multiplied by 2. The state lives in a
 * small GPU tensor [scale, growth tracker, last skip flag]; stateDict() reads it back.
 */
export class GradScaler {
  readonly device: Device;
  private readonly hyper: Required<GradScalerOptions>;
  /** f32 [4]: scale, growth tracker, last step's skip flag (1/0), unused. */
  readonly state: Tensor;

  constructor(device: Device, opts: GradScalerOptions = {}) {
    this.device = device;
    this.hyper = { initScale: opts.initScale ?? 2 ** 16, growthFactor: opts.growthFactor ?? 2, backoffFactor: opts.backoffFactor ?? 0.5, growthInterval: opts.growthInterval ?? 2000 };
    checkHyper(this.hyper);
    this.state = withoutScope(() => Tensor.from(device, [this.hyper.initScale, 0, 0, 0], [4], 'f32'));
  }

  /**
   * The gradient to seed the loss's backward() with: a fresh scalar holding the current scale
   * (`loss.backward(scaler.seed())` is scaler.scale(loss).backward()). A copy, so the update cannot
   * reach a gradient that passed the seed through. The caller disposes it.
   */
  seed(): Tensor {
    const s = Tensor.empty(this.device, [], 'f32');
    this.device.copyBuffer(this.state.buffer, 0, s.buffer, 0, 4);
    return s;
  }

  /**
   * unscale_ + clip_grad_norm_ (when `maxNorm` is a number) + the inf/NaN check + update(), after
   * backward: returns the step's outcome for AdamW.step(result.gate). Call once per optimizer step.
   */
  unscaleAndUpdate(params: readonly Tensor[], maxNorm: number | null = null): ScaledStep {
    if (maxNorm !== null && !(maxNorm > 0)) throw new HlipError('config', `gradient clipping norm must be positive, got ${maxNorm}`);
    const dev = this.device;
    const grads = params.flatMap((p) => (p.grad ? [p.grad] : []));
    const { partial, total } = gradSumsqPartials(dev, grads);
    const values = Tensor.empty(dev, [4], 'f32');
    finishScaledNorm(dev, partial, Math.max(1, total), values, this.state, maxNorm, this.hyper);
    partial.dispose();
    return { values, gate: { values, index: 1 } };
  }

  /** Reads the state back (the scale as the next step will use it). */
  async stateDict(): Promise<GradScalerState> {
    const s = (await this.state.data()) as Float32Array;
    return { scale: s[0] as number, growthFactor: this.hyper.growthFactor, backoffFactor: this.hyper.backoffFactor, growthInterval: this.hyper.growthInterval, growthTracker: s[1] as number };
  }

  /** Throws HlipError('config') naming the first invalid field of a saved state. */
  static validate(sd: GradScalerState): void {
    checkHyper({ initScale: sd.scale, growthFactor: sd.growthFactor, backoffFactor: sd.backoffFactor, growthInterval: sd.growthInterval });
    if (!Number.isInteger(sd.growthTracker) || sd.growthTracker < 0) throw new HlipError('config', `GradScaler: growth tracker must be a non-negative integer, got ${sd.growthTracker}`);
  }

  /** Restores a saved state (torch's load_state_dict also takes the saved hyper-parameters). */
  loadStateDict(sd: GradScalerState): void {
    GradScaler.validate(sd);
    Object.assign(this.hyper, { growthFactor: sd.growthFactor, backoffFactor: sd.backoffFactor, growthInterval: sd.growthInterval });
    this.device.write(this.state.buffer, 0, new Float32Array([sd.scale, sd.growthTracker, 0, 0]));
  }

  dispose(): void {
    this.state.dispose();
  }
}
