import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { elementwise } from '../src/kernels/elementwise.js';
import * as ops from '../src/ops/index.js';
import { philox4x32, PhiloxStream, randNormal, randUniform } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { read } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

// Random123's known-answer vectors for philox4x32_10.
const KAT: [number[], number[], number[]][] = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
];

describe('Philox4x32-10', () => {
  it('CPU matches the published test vectors', () => {
    for (const [c, k, want] of KAT) {
      expect([...philox4x32(c[0]!, c[1]!, c[2]!, c[3]!, k[0]!, k[1]!)]).toEqual(want);
    }
  });

  it('WGSL philox matches the published test vectors', async () => {
    // All four output words are finite normal floats, so bitcasting them through f32 storage is lossless.
    for (const [c, k, want] of KAT) {
      const out = Tensor.empty(dev, [4]);
      const src = ops.zeros(dev, [4]);
      const expr = `bitcast<f32>(philox(vec4<u32>(${c.map((v) => `${v}u`).join(', ')}), vec2<u32>(${k[0]}u, ${k[1]}u))[idx])`;
      elementwise(dev, expr, out, [src]);
      const bits = new Uint32Array((await read(out)).buffer);
      expect([...bits]).toEqual(want);
      out.dispose();
      src.dispose();
    }
  });
});

const seeds = [0, 1, 42, 2 ** 40 + 12345];
const shapes = [[1], [7], [33], [129], [1000], [3, 43]];

describe('GPU rand/randn equal the CPU Philox', () => {
  for (const seed of seeds) {
    for (const shape of shapes) {
      it(`rand seed ${seed} ${JSON.stringify(shape)}`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const t = ops.rand(dev, shape, seed, { stream: seed % 3 });
        const got = await read(t);
        t.dispose();
        const want = randUniform(n, seed, { stream: seed % 3 });
        expect([...got]).toEqual([...want]);
      });
    }
  }

  it('rand with low/high', async () => {
    const t = ops.rand(dev, [1000], 7, { low: -2, high: 3, stream: 5 });
    const got = await read(t);
    t.dispose();
    const want = randUniform(1000, 7, { low: -2, high: 3, stream: 5 });
    let err = 0;
    for (let i = 0; i < 1000; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!));
    // lo + span·u may be fused (fma) on the device: one f32 rounding of difference at most.
    expect(err).toBeLessThanOrEqual(3 * 2 ** -23);
  });

  for (const seed of seeds) {
    for (const shape of [[1], [7], [129], [1000], [4, 250]]) {
      it(`randn seed ${seed} ${JSON.stringify(shape)}`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const t = ops.randn(dev, shape, seed, { mean: 0.5, std: 2, stream: 1 });
        const got = await read(t);
        t.dispose();
        const want = randNormal(n, seed, { mean: 0.5, std: 2, stream: 1 });
        let err = 0;
        for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
        expect(err).toBeLessThanOrEqual(1e-6);
      });
    }
  }

  it('streams and seeds are independent (different numbers)', () => {
    const a = new PhiloxStream(1, 0);
    const b = new PhiloxStream(1, 1);
    const c = new PhiloxStream(2, 0);
    let same = 0;
    for (let i = 0; i < 100; i++) if (a.uniform(i) === b.uniform(i) || a.uniform(i) === c.uniform(i)) same++;
    expect(same).toBeLessThan(3);
    // Uniform moments: mean 1/2, variance 1/12.
    const u = randUniform(100000, 3);
    let m = 0;
    let v = 0;
    for (const x of u) m += x;
    m /= u.length;
    for (const x of u) v += (x - m) ** 2;
    v /= u.length;
    expect(Math.abs(m - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(v - 1 / 12)).toBeLessThan(0.002);
  });
});
