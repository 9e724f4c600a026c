import type { FloatDType } from '../dtype.js';

/**
 * The autocast region state (torch.autocast): while set, ops in the "lower precision" list run in this
 * dtype and the precision-sensitive ones in f32 (policy in src/ops/autocast.ts). Kept here, below the
 * ops layer, so the tape (gradient checkpointing) can save and restore it with the rest of a forward's
 * ambient state.
 */
let current: FloatDType | null = null;

/** The active autocast dtype, or null outside autocast regions. */
export function autocastDtype(): FloatDType | null {
  return current;
}

/** Runs fn with autocast set to `dtype` (null: off), restoring the previous state afterwards. */
export function withAutocast<T>(dtype: FloatDType | null, fn: () => T): T {
  const saved = current;
  current = dtype;
  try {
    return fn();
  } finally {
    current = saved;
  }
}
