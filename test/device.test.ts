import { beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../src/gpu/device.js';
import { BufferPool } from '../src/gpu/pool.js';
import { GpuError } from '../src/errors.js';
import * as ops from '../src/ops/index.js';
import { noGrad, scope } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice, inBrowser } from './helpers/device.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

async function freshDevice(): Promise<Device> {
  if (inBrowser) return Device.create();
  const path = '../src/node/gpu.js';
  const mod = (await import(/* @vite-ignore */ path)) as typeof import('../src/node/gpu.js');
  return mod.createNodeDevice();
}

describe('device layer', () => {
  it('reports the limits and features kernels choose variants from', () => {
    expect(dev.caps.maxInvocations).toBeGreaterThanOrEqual(256);
    expect(dev.caps.maxWorkgroupStorage).toBeGreaterThanOrEqual(16384);
    expect(dev.caps.maxStorageBinding).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(typeof dev.caps.f16).toBe('boolean');
    expect(dev.adapter.features.length).toBeGreaterThan(0);
  });

  it('batches many dispatches into few submits and reuses pipelines and bind groups', async () => {
    const x = ops.tensor(dev, [1, 2, 3], [3]);
    // A loop body that allocates the same shapes each time, as a training step does.
    const step = () =>
      scope(() => {
        let y = x;
        for (let i = 0; i < 50; i++) y = ops.scale(y, 1.01);
        dev.flush();
      });
    step();
    const s0 = { ...dev.stats };
    const pipelines0 = dev.pipelines.size;
    step();
    expect(dev.stats.dispatches - s0.dispatches).toBe(50);
    expect(dev.stats.submits - s0.submits).toBeLessThanOrEqual(1);
    expect(dev.pipelines.size).toBe(pipelines0);
    expect(dev.stats.bindGroupHits - s0.bindGroupHits).toBe(50);
    const y = scope(() => {
      let y = x;
      for (let i = 0; i < 50; i++) y = ops.scale(y, 1.01);
      return y;
    });
    expect((await y.data())[2]).toBeCloseTo(3 * 1.01 ** 50, 4);
    y.dispose();
    x.dispose();
  });

  it('surfaces a shader compile error as a typed GpuError at the next readback', async () => {
    const d = await freshDevice();
    const k = d.pipelines.get('broken', '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_thing; }');
    const t = Tensor.empty(d, [4]);
    d.dispatch(k, [], null, [1]);
    await expect(t.data()).rejects.toBeInstanceOf(GpuError);
    d.destroy();
  });

  it('refuses work on a destroyed device with a device-lost error instead of hanging', async () => {
    const d = await freshDevice();
    const t = ops.ones(d, [8]);
    await t.data();
    d.destroy();
    let err: unknown;
    try {
      ops.scale(t, 2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GpuError);
    expect((err as GpuError).kind).toBe('device-lost');
  });

  it('rejects buffers beyond the adapter limit with a limit error', () => {
    expect(() => Tensor.empty(dev, [2 ** 20, 2 ** 13], 'f32')).toThrow(GpuError);
  });

  it('tracks live and peak bytes and recycles buffers', () => {
    const live0 = dev.pool.liveBytes;
    const t = Tensor.empty(dev, [1000]);
    expect(dev.pool.liveBytes - live0).toBe(4096);
    t.dispose();
    expect(dev.pool.liveBytes).toBe(live0);
    const allocs = dev.pool.allocations;
    const u = Tensor.empty(dev, [1000]);
    expect(dev.pool.allocations).toBe(allocs);
    u.dispose();
  });
});

describe('tensor lifetime', () => {
  it('scope disposes temporaries but keeps returned tensors', async () => {
    const live0 = dev.pool.liveBytes;
    const out = scope(() => {
      const a = ops.ones(dev, [100]);
      const b = ops.scale(a, 3);
      return ops.add(a, b);
    });
    expect(dev.pool.liveBytes - live0).toBe(BufferPool.sizeClass(400));
    expect(Array.from(await out.data()).every((v) => v === 4)).toBe(true);
    out.dispose();
    expect(dev.pool.liveBytes).toBe(live0);
  });

  it('use after dispose is a typed error', () => {
    const a = ops.ones(dev, [3]);
    a.dispose();
    expect(() => ops.neg(a)).toThrow(/after dispose/);
  });

  it('backward releases the graph and accumulates leaf gradients', async () => {
    const live0 = dev.pool.liveBytes;
    const w = ops.tensor(dev, [1, 2, 3], [3], 'f32', true);
    for (let i = 0; i < 2; i++) {
      scope(() => {
        const loss = ops.sum(ops.mul(w, w));
        loss.backward();
      });
    }
    expect(Array.from(await w.grad!.data())).toEqual([4, 8, 12]);
    w.dispose();
    expect(dev.pool.liveBytes).toBe(live0);
  });

  it('detach stops the gradient and noGrad records nothing', async () => {
    const w = ops.tensor(dev, [1, 2], [2], 'f32', true);
    scope(() => {
      const d = w.detach();
      expect(d.requiresGrad).toBe(false);
      const loss = ops.sum(ops.add(ops.mul(w, d), ops.scale(w, 0)));
      loss.backward();
    });
    expect(Array.from(await w.grad!.data())).toEqual([1, 2]);
    const y = noGrad(() => ops.mul(w, w));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    y.dispose();
    w.dispose();
  });

  it('views share memory: reshape, permute, slice, expand', async () => {
    const x = ops.tensor(dev, [0, 1, 2, 3, 4, 5], [2, 3], 'f32', true);
    const t = ops.transpose(x);
    expect(Array.from(await t.data())).toEqual([0, 3, 1, 4, 2, 5]);
    const s = ops.slice(x, 1, 1, 3);
    expect(Array.from(await s.data())).toEqual([1, 2, 4, 5]);
    const e = ops.expand(ops.slice(x, 0, 0, 1), [3, 3]);
    expect(Array.from(await e.data())).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
    // loss = Σ t² + Σ s + Σ e  →  dx = 2x + [0,1,1 | 0,1,1] + [3,3,3 | 0,0,0]
    const loss = ops.add(ops.add(ops.sum(ops.mul(ops.reshape(t, [6]), ops.reshape(t, [6]))), ops.sum(s)), ops.sum(e));
    loss.backward();
    expect(Array.from(await x.grad!.data())).toEqual([3, 6, 8, 6, 9, 11]);
    for (const u of [x, t, s, e, loss]) u.dispose();
  });
});
