// Random numbers of the data pipeline (browser-safe). Every draw is Philox at counter
// (draw, index, epoch, purpose) under the run's seed, so a study's scan choice, its report order and an
// epoch's study order are pure functions of (seed, epoch, index): loading order, prefetching and resuming
// cannot change them, and no generator state needs saving.
import { HlipError } from '../errors.js';
import { philox4x32, seedKey } from '../tensor/rng.js';

/** Separate counter spaces for the pipeline's independent random choices. */
export const RNG_PURPOSE = { order: 1, scans: 2, report: 3, sentence: 4 } as const;
export type RngPurpose = keyof typeof RNG_PURPOSE;

const INV53 = 1 / 9007199254740992;

export function checkSeed(seed: number, what = 'seed'): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new HlipError('config', `${what} must be a non-negative integer, got ${seed}`);
  return seed;
}

function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new HlipError('config', `${what} must be an integer in [0, 2^32), got ${v}`);
  return v;
}

export class DataRng {
  private readonly k0: number;
  private readonly k1: number;
  private readonly index: number;
  private readonly epoch: number;
  private readonly purpose: number;
  private readonly words = new Uint32Array(4);
  private counter = 0;
  private next = 4;

  constructor(seed: number, purpose: RngPurpose, epoch: number, index: number) {
    [this.k0, this.k1] = seedKey(checkSeed(seed));
    this.purpose = RNG_PURPOSE[purpose];
    this.epoch = checkU32(epoch, 'epoch');
    this.index = checkU32(index, 'index');
  }

  u32(): number {
    if (this.next === 4) {
      philox4x32(this.counter++, this.index, this.epoch, this.purpose, this.k0, this.k1, this.words);
      this.next = 0;
    }
    return this.words[this.next++]!;
  }

  /** Uniform in [0, 1) with 53 bits (two words), so int() is unbiased enough for any list length. */
  uniform(): number {
    return (this.u32() * 2097152 + (this.u32() >>> 11)) * INV53;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Fisher–Yates shuffle in place (the same algorithm as Python's random.shuffle); returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }
}

/** A permutation of 0..n−1 drawn from (seed, purpose, epoch, index). */
export function permutation(n: number, rng: DataRng): Int32Array {
  const idx = Array.from({ length: n }, (_, i) => i);
  return Int32Array.from(rng.shuffle(idx));
}
