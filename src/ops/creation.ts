import type { DType } from '../dtype.js';
import type { Device } from '../gpu/device.js';
import { elementwise } from '../kernels/elementwise.js';
import { Tensor } from '../tensor/tensor.js';
import type { View } from '../kernels/view.js';

// A 16-byte buffer read (stride 0) by generator expressions, since a dispatch may not bind its
// output as an input too.
const dummies = new WeakMap<Device, GPUBuffer>();
function source(dev: Device, out: Tensor): View {
  let b = dummies.get(dev);
  if (!b) {
    b = dev.gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    dummies.set(dev, b);
  }
  return { buffer: b, shape: out.shape, strides: out.shape.map(() => 0), offset: 0, dtype: out.dtype };
}

function generate(dev: Device, shape: readonly number[], dtype: DType, expr: string, alpha = 0, beta = 0, seed?: readonly [number, number, number]): Tensor {
  const out = Tensor.empty(dev, shape, dtype);
  if (dtype === 'i32') {
    dev.write(out.buffer, 0, new Int32Array(out.size).fill(alpha));
    return out;
  }
  elementwise(dev, expr, out, [source(dev, out)], seed ? { alpha, beta, seed } : { alpha, beta });
  return out;
}

export function full(dev: Device, shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  if (value === 0 && !Object.is(value, -0)) {
    // All-zero bits in every dtype: clearBuffer is a memset instead of a kernel.
    const out = Tensor.empty(dev, shape, dtype);
    dev.clear(out.buffer, 0, out.storage.bytes);
    return out;
  }
  return generate(dev, shape, dtype, 'alpha', value);
}
export function zeros(dev: Device, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return full(dev, shape, 0, dtype);
}
export function ones(dev: Device, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return full(dev, shape, 1, dtype);
}

/** Seed → Philox key. The counter base lets one seed give several independent streams. */
export function philoxKey(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
}

/** Uniform [low, high) from the counter-based RNG: the same numbers on every device. */
export function rand(dev: Device, shape: readonly number[], seed: number, opts: { low?: number; high?: number; stream?: number; dtype?: DType } = {}): Tensor {
  const lo = opts.low ?? 0;
  const hi = opts.high ?? 1;
  return generate(dev, shape, opts.dtype ?? 'f32', 'alpha + (beta - alpha) * uniform_(idx)', lo, hi, [...philoxKey(seed), opts.stream ?? 0]);
}

/** Normal(mean, std) from the counter-based RNG. */
export function randn(dev: Device, shape: readonly number[], seed: number, opts: { mean?: number; std?: number; stream?: number; dtype?: DType } = {}): Tensor {
  return generate(dev, shape, opts.dtype ?? 'f32', 'alpha + beta * normal_(idx)', opts.mean ?? 0, opts.std ?? 1, [...philoxKey(seed), opts.stream ?? 0]);
}

export function tensor(dev: Device, data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32', requiresGrad = false): Tensor {
  const t = Tensor.from(dev, data, shape, dtype);
  t.requiresGrad = requiresGrad;
  return t;
}
