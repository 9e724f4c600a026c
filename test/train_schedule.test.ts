// open_clip learning-rate schedules and HLIP's step count, against hand-computed values.
import { describe, expect, it } from 'vitest';
import { constCooldownLr, constLr, cosineLr, makeSchedule, stepsPerEpoch, totalSteps } from '../src/train/schedule.js';

describe('lr schedules', () => {
  it('total steps = (num_batches // (accum_freq·accum_batch)) · epochs', () => {
    // CT-RATE recipe (hlip-spec §4.6): 377 batches per rank, 20 epochs → 7540.
    expect(totalSteps(377, 20)).toBe(7540);
    expect(stepsPerEpoch(100, 2, 3)).toBe(16); // 100 // 6
    expect(totalSteps(100, 5, 2, 3)).toBe(80);
    expect(totalSteps(5, 3, 2, 3)).toBe(0);
    expect(() => totalSteps(10, 1, 0)).toThrow(/accum_freq/);
  });

  it('cosine_lr: (step+1)/warmup ramp, then half-cosine to 0 over total − warmup', () => {
    const f = cosineLr(1e-3, 4, 12);
    // Warm-up: 1e-3·(s+1)/4.
    expect([0, 1, 2, 3].map(f)).toEqual([2.5e-4, 5e-4, 7.5e-4, 1e-3]);
    // e = s − 4, es = 8: 0.5·(1 + cos(π·e/8))·1e-3.
    expect(f(4)).toBeCloseTo(1e-3, 15);
    expect(f(6)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2) * 1e-3, 15); // cos(π/4)
    expect(f(8)).toBeCloseTo(0.5e-3, 15); // cos(π/2) = 0
    expect(f(10)).toBeCloseTo(0.5 * (1 - Math.SQRT1_2) * 1e-3, 15);
    expect(f(12)).toBeCloseTo(0, 15);
    // The reference recipe: warmup 377, total 7540; midpoint of the cosine is base/2.
    const g = cosineLr(1e-5, 377, 7540);
    expect(g(376)).toBe(1e-5);
    expect(g(377 + (7540 - 377) / 2)).toBeCloseTo(0.5e-5, 18);
    expect(cosineLr(1, 5, 5)(7)).toBe(0); // no cosine phase
  });

  it('const and const-cooldown', () => {
    const c = constLr(0.1, 2);
    expect([0, 1, 2, 50].map(c)).toEqual([0.05, 0.1, 0.1, 0.1]);
    expect(constLr(0.3)(0)).toBe(0.3);
    // total 10, cooldown 4 → cooldown starts at step 6; linear: (1 − e/4)·(base − end) + end.
    const d = constCooldownLr(1, 2, 10, 4, 1, 0.2);
    expect([0, 1, 2, 5].map(d)).toEqual([0.5, 1, 1, 1]);
    expect(d(6)).toBeCloseTo(1, 15);
    expect(d(7)).toBeCloseTo(0.75 * 0.8 + 0.2, 15);
    expect(d(9)).toBeCloseTo(0.25 * 0.8 + 0.2, 15);
    const q = constCooldownLr(1, 0, 10, 4, 2);
    expect(q(8)).toBeCloseTo(0.25, 15); // (1 − 2/4)²
    expect(makeSchedule({ name: 'const-cooldown', lr: 1, warmup: 2, total: 10, cooldownSteps: 4, cooldownEnd: 0.2 })(7)).toBeCloseTo(0.8, 15);
    expect(makeSchedule({ lr: 1e-3, warmup: 4, total: 12 })(6)).toBe(cosineLr(1e-3, 4, 12)(6));
    expect(() => makeSchedule({ name: 'const-cooldown', lr: 1, warmup: 0, total: 5 })).toThrow(/cooldown/);
  });
});
