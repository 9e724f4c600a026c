// Learning-rate schedules of open_clip (scheduler.py) and HLIP's step count (hlip-spec §4.4).
import { HlipError } from '../errors.js';

/** Learning rate of optimizer step `step` (0-based, the number of steps already taken). */
export type LrSchedule = (step: number) => number;

export type ScheduleName = 'cosine' | 'const' | 'const-cooldown';

function checkInt(v: number, what: string, min = 0): number {
  if (!Number.isInteger(v) || v < min) throw new HlipError('config', `${what} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

/**
 * Optimizer steps per epoch: open_clip divides the loader's batch count by accum_freq, HLIP by
 * accum_freq·accum_batch (both rounded down; a trailing partial step is dropped).
 */
export function stepsPerEpoch(numBatches: number, accumFreq = 1, accumBatch = 1): number {
  checkInt(numBatches, 'number of batches');
  checkInt(accumFreq, 'accum_freq', 1);
  checkInt(accumBatch, 'accum_batch', 1);
  return Math.floor(numBatches / (accumFreq * accumBatch));
}

/** total_steps = (num_batches // (accum_freq·accum_batch)) · epochs. */
export function totalSteps(numBatches: number, epochs: number, accumFreq = 1, accumBatch = 1): number {
  return stepsPerEpoch(numBatches, accumFreq, accumBatch) * checkInt(epochs, 'epochs');
}

/** `_warmup_lr`: base·(step+1)/warmup. */
function warmupLr(base: number, warmup: number, step: number): number {
  return (base * (step + 1)) / warmup;
}

/**
 * open_clip `cosine_lr`: linear warm-up (step+1)/warmup, then 0.5·(1+cos(π·e/es))·base with
 * e = step − warmup, es = total − warmup. When es ≤ 0 (no cosine phase) the rate after warm-up is 0,
 * where the reference would divide by zero.
 */
export function cosineLr(baseLr: number, warmup: number, total: number): LrSchedule {
  checkInt(warmup, 'warmup');
  checkInt(total, 'total steps');
  return (step) => {
    if (step < warmup) return warmupLr(baseLr, warmup, step);
    const es = total - warmup;
    if (es <= 0) return 0;
    return 0.5 * (1 + Math.cos((Math.PI * (step - warmup)) / es)) * baseLr;
  };
}

/** open_clip `const_lr`: warm-up, then the base rate. */
export function constLr(baseLr: number, warmup = 0): LrSchedule {
  checkInt(warmup, 'warmup');
  return (step) => (step < warmup ? warmupLr(baseLr, warmup, step) : baseLr);
}

/**
 * open_clip `const_lr_cooldown`: warm-up, constant, then over the last `cooldownSteps` steps
 * (1−e/es)^power·(base − end) + end (linear for power 1).
 */
export function constCooldownLr(baseLr: number, warmup: number, total: number, cooldownSteps: number, power = 1, endLr = 0): LrSchedule {
  checkInt(warmup, 'warmup');
  checkInt(total, 'total steps');
  checkInt(cooldownSteps, 'cooldown steps');
  const start = total - cooldownSteps;
  return (step) => {
    if (step < warmup) return warmupLr(baseLr, warmup, step);
    if (step < start) return baseLr;
    const es = total - start;
    if (es <= 0) return endLr;
    const decay = (1 - (step - start) / es) ** power;
    return decay * (baseLr - endLr) + endLr;
  };
}

export interface ScheduleOptions {
  /** `--lr-scheduler` (default 'cosine'). */
  name?: ScheduleName;
  lr: number;
  warmup: number;
  /** Total optimizer steps (see totalSteps). */
  total: number;
  /** const-cooldown: steps of cooldown (open_clip: steps per epoch · `--epochs-cooldown`). */
  cooldownSteps?: number;
  /** `--lr-cooldown-power` (default 1). */
  cooldownPower?: number;
  /** `--lr-cooldown-end` (default 0). */
  cooldownEnd?: number;
}

/** The schedule `--lr-scheduler` names. */
export function makeSchedule(o: ScheduleOptions): LrSchedule {
  switch (o.name ?? 'cosine') {
    case 'cosine':
      return cosineLr(o.lr, o.warmup, o.total);
    case 'const':
      return constLr(o.lr, o.warmup);
    case 'const-cooldown':
      if (o.cooldownSteps === undefined) throw new HlipError('config', "lr scheduler 'const-cooldown' needs cooldown steps (--epochs-cooldown)");
      return constCooldownLr(o.lr, o.warmup, o.total, o.cooldownSteps, o.cooldownPower ?? 1, o.cooldownEnd ?? 0);
    default:
      throw new HlipError('config', `unknown lr scheduler '${String(o.name)}' (cosine, const, const-cooldown)`);
  }
}
