import { isFloat } from '../dtype.js';
import { DTypeError, HlipError, ShapeError } from '../errors.js';
import { adamwStep } from '../kernels/adamw.js';
import { adamwStepGated, advanceSteps } from '../kernels/adamw-gated.js';
import { zeros } from '../ops/creation.js';
import { copyContiguous } from '../ops/view.js';
import { fmt, sameShape } from '../tensor/shape.js';
import { noGrad, withoutScope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';

export interface AdamWOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (p ← p − lr·wd·p). Default 1e-2, as torch.optim.AdamW. */
  weightDecay?: number;
}

export interface ParamGroupSpec extends AdamWOptions {
  params: readonly Tensor[];
}

/** A group as the optimizer holds it: hyperparameters may be changed between steps (schedules). */
export interface ParamGroup {
  readonly params: readonly Tensor[];
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

interface ParamState {
  step: number;
  m: Tensor;
  v: Tensor;
}

/** Host copy of the optimizer state, indexed like torch: params numbered across groups in order. */
export interface AdamWStateDict {
  state: ({ step: number; expAvg: Float32Array; expAvgSq: Float32Array } | null)[];
  paramGroups: { lr: number; betas: [number, number]; eps: number; weightDecay: number; params: number[] }[];
}

const DEFAULTS = { lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 1e-2 };

/**
 * A step decided on the GPU without a readback (GradScaler): every gradient is multiplied by
 * `values[index]` and the whole step is skipped when `values[index + 1]` ≠ 0. `values` is f32.
 */
export interface DeviceGate {
  readonly values: Tensor;
  /** Default 0. */
  readonly index?: number;
}

/**
 * AdamW with torch.optim.AdamW semantics (amsgrad and maximize are not supported). Each parameter is
 * updated by one fused kernel that writes its storage in place, so parameters must be contiguous
 * persistent tensors; first and second moments are f32 tensors owned by the optimizer (dispose() frees
 * them). Parameters whose grad is null are skipped and their step count does not advance.
 */
export class AdamW {
  readonly paramGroups: ParamGroup[];
  private readonly state = new Map<Tensor, ParamState>();
  /**
   * Once a gated step ran: every parameter's step count on the GPU (f32, numbered as allParams()), the
   * authority over the host counts from then on, because skipped steps are only known there.
   */
  private deviceSteps: Tensor | null = null;
  /** The gate of ungated steps after gated ones: coefficient 1, never skip. */
  private passGate: Tensor | null = null;
  /** Slots of the parameters that had gradients in the last gated step, and their key. */
  private stepped: { key: string; idx: Tensor } | null = null;

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec[], defaults: AdamWOptions = {}) {
    const specs: readonly ParamGroupSpec[] = params.length > 0 && params[0] instanceof Tensor ? [{ params: params as readonly Tensor[] }] : (params as readonly ParamGroupSpec[]);
    const seen = new Set<Tensor>();
    this.paramGroups = specs.map((g) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new HlipError('config', `AdamW: ${p} appears in more than one place`);
        seen.add(p);
        if (!isFloat(p.dtype)) throw new DTypeError(`AdamW: parameter ${p} is not floating`);
        if (!p.isContiguous) throw new ShapeError(`AdamW: parameter ${p} must be contiguous (it is updated in place)`);
      }
      const betas = g.betas ?? defaults.betas ?? DEFAULTS.betas;
      return {
        params: [...g.params],
        lr: g.lr ?? defaults.lr ?? DEFAULTS.lr,
        betas: [betas[0], betas[1]],
        eps: g.eps ?? defaults.eps ?? DEFAULTS.eps,
        weightDecay: g.weightDecay ?? defaults.weightDecay ?? DEFAULTS.weightDecay,
      };
    });
  }

  private allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Moments are persistent: created outside any scope the caller's step() may run in. */
  private stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = withoutScope(() => ({ step: 0, m: zeros(p.device, p.shape, 'f32'), v: zeros(p.device, p.shape, 'f32') }));
      this.state.set(p, s);
    }
    return s;
  }

  /**
   * One update of every parameter that has a gradient. With `gate` (or after any gated step) the update
   * reads its gradient coefficient and skip flag from GPU memory (see DeviceGate).
   */
  step(gate?: DeviceGate): void {
    if (gate || this.deviceSteps) {
      this.stepGated(gate);
      return;
    }
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const g = p.grad;
          if (!g) continue;
          p.assertAlive();
          if (!sameShape(g.shape, p.shape)) throw new ShapeError(`AdamW: gradient ${fmt(g.shape)} does not match parameter ${fmt(p.shape)}`);
          if (g.dtype !== p.dtype) throw new DTypeError(`AdamW: gradient ${g.dtype} does not match parameter ${p.dtype}`);
          const s = this.stateOf(p);
          s.step++;
          const gc = g.isContiguous ? g : withoutScope(() => copyContiguous(g));
          adamwStep(p.device, p, gc, s.m, s.v, p.size, {
            lr: group.lr,
            beta1: group.betas[0],
            beta2: group.betas[1],
            eps: group.eps,
            weightDecay: group.weightDecay,
            step: s.step,
          });
          if (gc !== g) gc.dispose();
        }
      }
    });
  }

  private stepGated(gate?: DeviceGate): void {
    const params = this.allParams();
    const first = params[0];
    if (!first) return;
    const dev = first.device;
    const g0 = gate ?? { values: (this.passGate ??= withoutScope(() => Tensor.from(dev, [1, 0], [2], 'f32'))), index: 0 };
    if (g0.values.dtype !== 'f32' || g0.values.size < (g0.index ?? 0) + 2) throw new ShapeError('AdamW: a gate needs two f32 values (coefficient, skip flag)');
    const gi = g0.index ?? 0;
    const steps = (this.deviceSteps ??= withoutScope(() => Tensor.from(dev, params.map((p) => this.state.get(p)?.step ?? 0), [params.length], 'f32')));
    const slots: number[] = [];
    noGrad(() => {
      let k = 0;
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const slot = k++;
          const g = p.grad;
          if (!g) continue;
          p.assertAlive();
          if (!sameShape(g.shape, p.shape)) throw new ShapeError(`AdamW: gradient ${fmt(g.shape)} does not match parameter ${fmt(p.shape)}`);
          if (g.dtype !== p.dtype) throw new DTypeError(`AdamW: gradient ${g.dtype} does not match parameter ${p.dtype}`);
          const s = this.stateOf(p);
          const gc = g.isContiguous ? g : withoutScope(() => copyContiguous(g));
          adamwStepGated(dev, p, gc, s.m, s.v, p.size, { lr: group.lr, beta1: group.betas[0], beta2: group.betas[1], eps: group.eps, weightDecay: group.weightDecay }, steps, slot, g0.values, gi);
          if (gc !== g) gc.dispose();
          slots.push(slot);
        }
      }
    });
    // The index list changes only when the set of parameters with gradients does.
    const key = slots.join(',');
    if (this.stepped?.key !== key) {
      this.stepped?.idx.dispose();
      this.stepped = { key, idx: withoutScope(() => Tensor.from(dev, slots.length ? slots : [0], [Math.max(1, slots.length)], 'i32')) };
    }
    advanceSteps(dev, steps, this.stepped.idx, slots.length, g0.values, gi);
  }

  /** Drops every gradient (set to null, releasing its memory), like torch's zero_grad(set_to_none=True). */
  zeroGrad(): void {
    for (const p of this.allParams()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Reads the state back to the host (moments as Float32Arrays), in a form loadStateDict() accepts. */
  async stateDict(): Promise<AdamWStateDict> {
    const params = this.allParams();
    const state: AdamWStateDict['state'] = [];
    // After gated steps the counts are on the GPU; a parameter whose every step was skipped has none
    // (torch never ran its optimizer step).
    const dsteps = this.deviceSteps ? ((await this.deviceSteps.data()) as Float32Array) : null;
    params.forEach((p, i) => {
      const s = this.state.get(p);
      if (s && dsteps) s.step = dsteps[i] as number;
    });
    for (const p of params) {
      const s = this.state.get(p);
      state.push(s && !(dsteps && s.step === 0) ? { step: s.step, expAvg: (await s.m.data()) as Float32Array, expAvgSq: (await s.v.data()) as Float32Array } : null);
    }
    let k = 0;
    const paramGroups = this.paramGroups.map((g) => ({ lr: g.lr, betas: [g.betas[0], g.betas[1]] as [number, number], eps: g.eps, weightDecay: g.weightDecay, params: g.params.map(() => k++) }));
    return { state, paramGroups };
  }

  /** Restores state saved by stateDict() into an optimizer over parameters of the same groups and shapes. */
  loadStateDict(sd: AdamWStateDict): void {
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new ShapeError(`AdamW state has ${sd.paramGroups.length} parameter groups, the optimizer ${this.paramGroups.length}`);
    }
    sd.paramGroups.forEach((g, i) => {
      const mine = this.paramGroups[i] as ParamGroup;
      if (g.params.length !== mine.params.length) throw new ShapeError(`AdamW state group ${i} has ${g.params.length} parameters, the optimizer ${mine.params.length}`);
    });
    const params = this.allParams();
    if (sd.state.length !== params.length) throw new ShapeError(`AdamW state has ${sd.state.length} entries for ${params.length} parameters`);
    // Validate everything before changing anything.
    sd.state.forEach((s, i) => {
      const p = params[i] as Tensor;
      if (s && (s.expAvg.length !== p.size || s.expAvgSq.length !== p.size || !Number.isInteger(s.step) || s.step < 0)) {
        throw new ShapeError(`AdamW state entry ${i} (${s.expAvg.length} elements, step ${s.step}) does not fit parameter ${fmt(p.shape)}`);
      }
    });
    sd.paramGroups.forEach((g, i) => {
      const mine = this.paramGroups[i] as ParamGroup;
      mine.lr = g.lr;
      mine.betas = [g.betas[0], g.betas[1]];
      mine.eps = g.eps;
      mine.weightDecay = g.weightDecay;
    });
    // Host counts are the authority again until the next gated step copies them to the GPU.
    this.deviceSteps?.dispose();
    this.deviceSteps = null;
    sd.state.forEach((s, i) => {
      const p = params[i] as Tensor;
      const old = this.state.get(p);
      old?.m.dispose();
      old?.v.dispose();
      this.state.delete(p);
      if (!s) return;
      this.state.set(
        p,
        withoutScope(() => ({ step: s.step, m: Tensor.from(p.device, s.expAvg, p.shape, 'f32'), v: Tensor.from(p.device, s.expAvgSq, p.shape, 'f32') })),
      );
    });
  }

  /** Frees the moment buffers (the parameters stay the caller's). */
  dispose(): void {
    this.deviceSteps?.dispose();
    this.deviceSteps = null;
    this.passGate?.dispose();
    this.passGate = null;
    this.stepped?.idx.dispose();
    this.stepped = null;
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}
