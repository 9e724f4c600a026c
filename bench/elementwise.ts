// Strided elementwise kernels: copies of permuted/padded views and broadcast binaries, the layouts an
// HLIP training step produces (patchify, attention layouts, matmul packing).
//   npm run bench -- elementwise [--json] [--repeats 3] [--only <substring>]
// One line per layout: gpu_ms = the fastest of the repeats by the device's per-kernel profiler
// (timestamp queries; wall time around a sync where the adapter lacks them), ns_per_element from it.
import type { Device } from '../src/gpu/device.js';
import { elementwise } from '../src/kernels/elementwise.js';
import type { View } from '../src/kernels/view.js';
import { createNodeDevice } from '../src/node/gpu.js';
import { Tensor } from '../src/tensor/tensor.js';
import { registerBench, type BenchContext } from './registry.js';

interface Case {
  name: string;
  expr: string;
  out: { shape: number[]; strides?: number[] };
  /** Each input: a contiguous block of `base` shape read through permutation `perm`, or explicit strides. */
  inputs: ({ base: number[]; perm: number[] } | { shape: number[]; strides: number[] })[];
}

const N = 16 * 72 * 48 * 48;
const cases: Case[] = [
  { name: 'contiguous copy', expr: 'a', out: { shape: [N] }, inputs: [{ base: [N], perm: [0] }] },
  { name: 'contiguous add', expr: 'a + b', out: { shape: [N] }, inputs: [{ base: [N], perm: [0] }, { base: [N], perm: [0] }] },
  { name: '2-D transpose 288×9216', expr: 'a', out: { shape: [288, 9216] }, inputs: [{ base: [9216, 288], perm: [1, 0] }] },
  { name: '4-D permute (0,2,3,1)', expr: 'a', out: { shape: [16, 48, 48, 72] }, inputs: [{ base: [16, 72, 48, 48], perm: [0, 2, 3, 1] }] },
  { name: '4-D permute (0,3,1,2)', expr: 'a', out: { shape: [16, 72, 48, 48] }, inputs: [{ base: [16, 48, 48, 72], perm: [0, 3, 1, 2] }] },
  { name: '4-D permute (0,2,1,3)', expr: 'a', out: { shape: [16, 72, 48, 48] }, inputs: [{ base: [16, 48, 72, 48], perm: [0, 2, 1, 3] }] },
  { name: '6-D patchify', expr: 'a', out: { shape: [288, 4, 4, 4, 12, 12] }, inputs: [{ base: [288, 4, 4, 12, 4, 12], perm: [0, 2, 4, 1, 3, 5] }] },
  { name: 'rows padded 216→224', expr: 'a', out: { shape: [4896, 216], strides: [224, 1] }, inputs: [{ base: [4896, 216], perm: [0, 1] }] },
  { name: 'broadcast add [128,20736]+[20736]', expr: 'a + b', out: { shape: [128, 20736] }, inputs: [{ base: [128, 20736], perm: [0, 1] }, { shape: [128, 20736], strides: [0, 1] }] },
  { name: 'broadcast add [64,576,72]+[64,1,72]', expr: 'a + b', out: { shape: [64, 576, 72] }, inputs: [{ base: [64, 576, 72], perm: [0, 1, 2] }, { shape: [64, 576, 72], strides: [72, 0, 1] }] },
  { name: '8-D reversal', expr: 'a', out: { shape: [18, 8, 7, 6, 5, 4, 3, 2] }, inputs: [{ base: [2, 3, 4, 5, 6, 7, 8, 18], perm: [7, 6, 5, 4, 3, 2, 1, 0] }] },
];

function rowMajor(shape: readonly number[]): number[] {
  const s = shape.map(() => 1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = (s[i + 1] as number) * (shape[i + 1] as number);
  return s;
}

async function timeOnce(dev: Device, launch: () => void): Promise<number> {
  if (dev.caps.timestampQuery) {
    dev.startProfile();
    launch();
    let ms = 0;
    for (const v of (await dev.stopProfile()).values()) ms += v.ms;
    return ms;
  }
  await dev.sync();
  const t0 = performance.now();
  launch();
  await dev.sync();
  return performance.now() - t0;
}

async function run(ctx: BenchContext): Promise<void> {
  const opt = (k: string) => {
    const i = ctx.args.indexOf(`--${k}`);
    return i >= 0 ? ctx.args[i + 1] : undefined;
  };
  const repeats = Number(opt('repeats') ?? 3);
  const only = opt('only');
  const dev = await createNodeDevice();
  const a = Tensor.from(dev, new Float32Array(N).map((_, i) => i % 977), [N]);
  const b = Tensor.from(dev, new Float32Array(N).map((_, i) => i % 13), [N]);
  const out = Tensor.empty(dev, [4896 * 224]);
  const outBig = Tensor.empty(dev, [N]);
  for (const c of cases) {
    if (only && !c.name.includes(only)) continue;
    const n = c.out.shape.reduce((x, y) => x * y, 1);
    const o: View = (c.out.strides ? out : outBig).view(c.out.shape, c.out.strides ?? rowMajor(c.out.shape), 0);
    const ins: View[] = c.inputs.map((s, k) => {
      const t = k === 0 ? a : b;
      if ('perm' in s) {
        const st = rowMajor(s.base);
        return t.view(s.perm.map((p) => s.base[p] as number), s.perm.map((p) => st[p] as number), 0);
      }
      return t.view(s.shape, s.strides, 0);
    });
    const launch = () => elementwise(dev, c.expr, o, ins);
    await timeOnce(dev, launch); // compiles the pipeline
    let best = Infinity;
    for (let r = 0; r < repeats; r++) best = Math.min(best, await timeOnce(dev, launch));
    const row = { bench: 'elementwise', layout: c.name, elements: n, gpu_ms: Math.round(best * 100) / 100, ns_per_element: Math.round((best / n) * 1e7) / 10 };
    if (ctx.json) console.log(JSON.stringify(row));
    else console.log(`${c.name.padEnd(38)} ${String(n).padStart(8)} el  ${best.toFixed(1).padStart(7)} ms  ${row.ns_per_element.toFixed(1).padStart(6)} ns/el`);
  }
}

registerBench('elementwise', '[--json] [--repeats 3] [--only <substring>]', run);
