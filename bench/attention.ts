// Hierarchical attention: the windowed flash kernels against the materialised softmax(QKᵀ)V built
// from the core ops (matmul, softmax), forward and backward, for HLIP's window shapes.
//   npm run bench -- attention [--json] [--repeats 5] [--shapes ct,mri2,mri4,sweep] [--max-tokens 8192]
//                              [--impl flash,materialized] [--heads 12] [--head-dim 64] [--busy-poll]
// One JSON line per (shape, window, impl): tokens = patch tokens per study (prefix tokens not
// counted); fwd_ms / bwd_ms = medians over the repeats (after one warm-up each that compiles the
// kernels; the implementations' repeats alternate, so load changes on a shared machine hit both);
// peak_bytes = peak pooled GPU bytes during forward + backward, inputs included. The materialised
// path runs all heads at once when the [windows, heads, L, L] scores fit one storage binding, else
// head by head, else (one head's scores too large) reports null times.
import type { Device } from '../src/gpu/device.js';
import { createNodeDevice } from '../src/node/gpu.js';
import { attention, WindowTable } from '../src/ops/attention.js';
import * as ops from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { registerBench, type BenchContext } from './registry.js';

type Impl = 'flash' | 'materialized';
type Window = 'slice' | 'scan' | 'study';

interface Shape {
  name: string;
  window: Window;
  /** Patch tokens per study. */
  tokens: number;
  windows: number;
  /** Patch tokens per window. */
  len: number;
}

interface Row {
  bench: 'attention';
  window: Window;
  tokens: number;
  heads: number;
  head_dim: number;
  impl: Impl;
  fwd_ms: number | null;
  bwd_ms: number | null;
  peak_bytes: number | null;
}

/** HLIP shapes: CT 14×14×14 grid (slices of 196), MRI studies of 2 and 4 scans × 1176, a study sweep. */
function shapes(sets: string[], maxTokens: number): Shape[] {
  const out: Shape[] = [];
  const add = (name: string, window: Window, windows: number, len: number) => {
    if (windows * len <= maxTokens) out.push({ name, window, tokens: windows * len, windows, len });
  };
  if (sets.includes('ct')) {
    add('ct', 'slice', 14, 196);
    add('ct', 'study', 1, 2744);
  }
  for (const n of [2, 4]) {
    if (!sets.includes(`mri${n}`)) continue;
    add(`mri${n}`, 'scan', n, 1176);
    add(`mri${n}`, 'study', 1, n * 1176);
  }
  if (sets.includes('sweep')) for (const t of [512, 1024, 2048, 4096, 8192]) add('sweep', 'study', 1, t);
  return out;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** dawn.node polls with setImmediate; 1 ms timers leave the CPU cores to a CPU adapter's workers. */
function throttlePolling(): void {
  const g = globalThis as unknown as { setImmediate: (fn: (...a: unknown[]) => void, ...a: unknown[]) => unknown };
  g.setImmediate = (fn, ...a) => setTimeout(fn, 1, ...a);
}

interface Timed {
  fwd: number;
  bwd: number;
  peak: number;
}

/** One forward + backward, timed to completion of the GPU work; peak pooled bytes above `base`. */
async function flashOnce(dev: Device, s: Shape, heads: number, dim: number, prefix: number): Promise<Timed> {
  const win = WindowTable.uniform(s.windows, s.len, prefix);
  await dev.sync();
  const base = dev.pool.liveBytes;
  dev.pool.resetPeak();
  const qkv = ops.randn(dev, [s.tokens, 3 * heads * dim], 1, { std: 0.5 });
  const pre = ops.randn(dev, [s.windows * prefix, 3 * heads * dim], 2, { std: 0.5 });
  const g = ops.randn(dev, [win.outRows, heads, dim], 3);
  qkv.requiresGrad = true;
  pre.requiresGrad = true;
  await dev.sync();
  let t = performance.now();
  const o = attention({ qkv }, { heads, windows: win, prefix: { qkv: pre } });
  await dev.sync();
  const fwd = performance.now() - t;
  t = performance.now();
  o.backward(g);
  await dev.sync();
  const bwd = performance.now() - t;
  const peak = dev.pool.peakBytes - base;
  for (const x of [o, g, qkv, pre]) x.dispose();
  return { fwd, bwd, peak };
}

/**
 * softmax(Q Kᵀ · scale) V from the core ops on [windows, heads, L, D] inputs (prefix rows included
 * in L, as the reference lays a window out), all heads at once or head by head.
 */
async function materializedOnce(dev: Device, s: Shape, heads: number, dim: number, prefix: number): Promise<Timed | null> {
  const L = s.len + prefix;
  const limit = dev.caps.maxStorageBinding;
  const perHead = s.windows * L * L * 4;
  if (perHead > limit) return null;
  const groups = perHead * heads > limit ? heads : 1;
  const hg = heads / groups;
  await dev.sync();
  const base = dev.pool.liveBytes;
  dev.pool.resetPeak();
  const inputs = Array.from({ length: groups }, (_, k) =>
    [0, 1, 2, 3].map((j) => {
      const x = ops.randn(dev, [s.windows, hg, L, dim], 10 * k + j, { std: 0.5 });
      x.requiresGrad = j < 3;
      return x;
    }),
  );
  await dev.sync();
  let fwd = 0;
  let bwd = 0;
  for (const [q, k, v, g] of inputs as Tensor[][]) {
    let t = performance.now();
    const kt = ops.transpose(k as Tensor, -2, -1);
    const sc = ops.matmul(q as Tensor, kt);
    const ss = ops.scale(sc, 1 / Math.sqrt(dim));
    const p = ops.softmax(ss, -1);
    const o = ops.matmul(p, v as Tensor);
    await dev.sync();
    fwd += performance.now() - t;
    t = performance.now();
    o.backward(g);
    await dev.sync();
    bwd += performance.now() - t;
    for (const x of [kt, sc, ss, p, o]) x.dispose();
    for (const x of [q, k, v] as Tensor[]) {
      x.grad?.dispose();
      x.grad = null;
    }
  }
  const peak = dev.pool.peakBytes - base;
  for (const x of inputs.flat()) x.dispose();
  return { fwd, bwd, peak };
}

async function run(ctx: BenchContext): Promise<void> {
  const note = (s: string) => console.log(ctx.json ? `# ${s}` : s);
  const repeats = Math.max(5, Number(option(ctx.args, '--repeats') ?? 5));
  const sets = (option(ctx.args, '--shapes') ?? 'ct,mri2,mri4,sweep').split(',');
  const maxTokens = Number(option(ctx.args, '--max-tokens') ?? 8192);
  const impls = (option(ctx.args, '--impl') ?? 'flash,materialized').split(',') as Impl[];
  const heads = Number(option(ctx.args, '--heads') ?? 12);
  const dim = Number(option(ctx.args, '--head-dim') ?? 64);
  const prefix = Number(option(ctx.args, '--prefix') ?? 1);
  if (!ctx.args.includes('--busy-poll')) throttlePolling();
  const dev = await createNodeDevice();
  note(`adapter: ${dev.adapter.description || dev.adapter.device}; subgroups ${dev.caps.subgroups}; ${repeats} repeats; ${prefix} prefix token(s) per window`);
  for (const s of shapes(sets, maxTokens)) {
    const once = (impl: Impl) => (impl === 'flash' ? flashOnce(dev, s, heads, dim, prefix) : materializedOnce(dev, s, heads, dim, prefix));
    // One warm-up each (compiles the kernels), then the implementations' repeats interleaved, so a
    // change in the load of a shared machine hits all of them alike.
    const runnable = new Map<Impl, boolean>();
    for (const impl of impls) runnable.set(impl, (await once(impl)) !== null);
    const runs = new Map<Impl, Timed[]>(impls.map((impl) => [impl, []]));
    for (let r = 0; r < repeats; r++) for (const impl of impls) if (runnable.get(impl)) runs.get(impl)?.push((await once(impl)) as Timed);
    for (const impl of impls) {
      const row: Row = { bench: 'attention', window: s.window, tokens: s.tokens, heads, head_dim: dim, impl, fwd_ms: null, bwd_ms: null, peak_bytes: null };
      const xs = runs.get(impl) ?? [];
      if (xs.length) {
        row.fwd_ms = round(median(xs.map((x) => x.fwd)));
        row.bwd_ms = round(median(xs.map((x) => x.bwd)));
        row.peak_bytes = Math.max(...xs.map((x) => x.peak));
      }
      if (ctx.json) console.log(JSON.stringify(row));
      else console.log(`${s.name.padEnd(5)} ${s.window.padEnd(5)} ${String(s.windows).padStart(2)}×${String(s.len).padEnd(5)} ${impl.padEnd(12)} fwd ${fmt(row.fwd_ms)} ms  bwd ${fmt(row.bwd_ms)} ms  peak ${row.peak_bytes === null ? '—' : (row.peak_bytes / 2 ** 20).toFixed(1) + ' MiB'}`);
    }
  }
  dev.destroy();
}

function round(v: number): number {
  return Number(v.toFixed(2));
}
function fmt(v: number | null): string {
  return v === null ? '—' : v.toFixed(1);
}

registerBench('attention', '[--json] [--repeats n] [--shapes ct,mri2,mri4,sweep] [--max-tokens n] [--impl flash,materialized] [--heads 12] [--head-dim 64] [--prefix 1] [--busy-poll]', run);

export { run };
