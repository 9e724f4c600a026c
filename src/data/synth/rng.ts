// Sequential random numbers for the synthetic data generator, drawn from the project's Philox (the same
// counter-based generator the kernels use), so a (seed, stream) pair names one reproducible sequence in
// every runtime and studies can be generated independently of each other, in any order.
import { PhiloxStream } from '../../tensor/rng.js';

const INV32 = 1 / 4294967296;

export class Rng {
  private readonly ph: PhiloxStream;
  private counter = 0;
  private readonly words = new Uint32Array(4);
  private next = 4;
  private spare: number | null = null;

  constructor(seed: number, stream: number) {
    this.ph = new PhiloxStream(seed, stream);
  }

  /** One raw 32-bit word. */
  u32(): number {
    if (this.next === 4) {
      this.words.set(this.ph.words(this.counter++));
      this.next = 0;
    }
    return this.words[this.next++]!;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  uniform(): number {
    return this.u32() * INV32;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  bool(p = 0.5): boolean {
    return this.uniform() < p;
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u1 = (this.u32() + 1) * INV32; // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.uniform() * items.length)]!;
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }

  /** A fast generator for bulk voxel noise, seeded from this stream. */
  fast(): FastNormal {
    return new FastNormal(this.u32(), this.u32(), this.u32(), this.u32());
  }
}

/**
 * xoshiro128** (Blackman & Vigna) with Box–Muller normals: a few times faster than Philox per number,
 * which matters for the hundreds of thousands of noise values of each study.
 */
export class FastNormal {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = 0;
  private hasSpare = false;

  constructor(a: number, b: number, c: number, d: number) {
    this.a = a | 0;
    this.b = b | 0;
    this.c = c | 0;
    this.d = d | 0;
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // the all-zero state is a fixed point
  }

  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9);
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r >>> 0;
  }

  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = (this.u32() + 1) * INV32;
    const u2 = this.u32() * INV32;
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    this.hasSpare = true;
    return r * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
