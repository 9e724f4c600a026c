// CPU twin of the WGSL Philox4x32-10 in shaders/elementwise_common.wgsl: the same counter layout, key
// schedule and float conversions, so host code (tests, data pipelines, dropout references) reproduces
// the numbers any device generates, bit for bit for uniforms.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32 (exact: 16-bit limbs stay within 2^53). */
function mulhi(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const mid = ((a0 * b0) >>> 16) + (a0 * b1 & 0xffff) + (a1 * b0 & 0xffff);
  return (a1 * b1 + ((a0 * b1) >>> 16) + ((a1 * b0) >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * Philox4x32 with 10 rounds (Salmon et al., SC'11). `out` receives the four output words; returns it.
 */
export function philox4x32(
  c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let x = c0 >>> 0, y = c1 >>> 0, z = c2 >>> 0, w = c3 >>> 0;
  let ka = k0 >>> 0, kb = k1 >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, x);
    const lo0 = Math.imul(M0, x) >>> 0;
    const hi1 = mulhi(M1, z);
    const lo1 = Math.imul(M1, z) >>> 0;
    x = (hi1 ^ y ^ ka) >>> 0;
    y = lo1;
    z = (hi0 ^ w ^ kb) >>> 0;
    w = lo0;
    ka = (ka + W0) >>> 0;
    kb = (kb + W1) >>> 0;
  }
  out[0] = x;
  out[1] = y;
  out[2] = z;
  out[3] = w;
  return out;
}

/** Seed → Philox key, as src/ops/creation.ts's philoxKey: low and high 32 bits of the seed. */
export function seedKey(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
}

const f = Math.fround;
const INV24 = f(1 / 16777216);
const INV24P1 = f(1 / 16777217);

/**
 * The RNG the kernels see: element `i` of stream `stream` under `seed` draws Philox at counter
 * (i, stream, 0, 0) with key seedKey(seed).
 */
export class PhiloxStream {
  private readonly k0: number;
  private readonly k1: number;
  private readonly buf = new Uint32Array(4);
  constructor(readonly seed: number, readonly stream = 0) {
    [this.k0, this.k1] = seedKey(seed);
  }

  /** The four raw words for element i. */
  words(i: number): Uint32Array {
    return philox4x32(i, this.stream, 0, 0, this.k0, this.k1, this.buf);
  }

  /** WGSL uniform_(i): 24 high bits of word 0, in [0, 1). Exact in f32. */
  uniform(i: number): number {
    return (this.words(i)[0]! >>> 8) * INV24;
  }

  /**
   * WGSL normal_(i): Box–Muller on the 24-bit uniforms of words 0 and 1 (rounded to f32 as the shader
   * does). The shader evaluates -log and cos(2π·) to a few ulp (its own neg_log_/cos_turns_, not the
   * loose built-ins), so float64 here agrees with every device to ~1e-6.
   */
  normal(i: number): number {
    const w = this.words(i);
    const u1 = f(((w[0]! >>> 8) + 1) * INV24P1);
    const u2 = (w[1]! >>> 8) * INV24;
    const r = f(Math.sqrt(-2 * Math.log(u1)));
    return f(r * f(Math.cos(2 * Math.PI * u2)));
  }
}

/** Host version of ops.rand: uniform [low, high) for elements 0..n-1, in f32. */
export function randUniform(n: number, seed: number, opts: { low?: number; high?: number; stream?: number } = {}): Float32Array {
  const s = new PhiloxStream(seed, opts.stream ?? 0);
  const lo = f(opts.low ?? 0);
  const span = f(f(opts.high ?? 1) - lo);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + span * s.uniform(i);
  return out;
}

/** Host version of ops.randn: Normal(mean, std) for elements 0..n-1, in f32. */
export function randNormal(n: number, seed: number, opts: { mean?: number; std?: number; stream?: number } = {}): Float32Array {
  const s = new PhiloxStream(seed, opts.stream ?? 0);
  const mean = f(opts.mean ?? 0);
  const std = f(opts.std ?? 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * s.normal(i);
  return out;
}
