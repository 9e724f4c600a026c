// Matmul throughput: hlip against @tensorflow/tfjs-backend-webgpu and @jax-js/jax, all three in this
// process on the one adapter of the npm `webgpu` package's navigator.gpu.
//   npm run bench -- matmul [--json] [--sizes 1024,2744x2304x768,72x216x4608:at|training] [--impl hlip,jax-js]
//                           [--dtype f32] [--repeats 5] [--busy-poll]
// A size may end in :at, :bt or :abt: that operand is stored transposed and passed as a transposed view
// (tfjs: matMul's transpose flags; jax-js: .transpose()), as training's x·Wᵀ and Xᵀ·G are; such rows
// carry a `layout` field ('tn', 'nt', 'tt'). `--sizes training` runs only the training shapes.
// ms is the median over the timed repeats of (repeat wall time / chain length); each repeat is a chain
// of independent matmuls ended by one readback of the last result. cpu_ms is process CPU time (all
// threads: the adapter's workers and the JS thread) per matmul over the same repeats.
import { createNodeDevice } from '../src/node/gpu.js';
import type { Device } from '../src/gpu/device.js';
import * as ops from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { registerBench, type BenchContext } from './registry.js';

type DType = 'f32' | 'f16';
type ImplName = 'hlip' | 'tfjs-webgpu' | 'jax-js';

/** One product m×n×k; `ta`/`tb`: the operand is stored transposed ([k, m] / [n, k]) and used as its transpose. */
interface Shape {
  m: number;
  n: number;
  k: number;
  ta: boolean;
  tb: boolean;
}

interface Runner {
  /** Runs `count` matmuls and awaits one readback of the last; returns it when `keep` is set. */
  chain(count: number, keep?: boolean): Promise<Float32Array | null>;
  dispose(): void;
}

interface Impl {
  name: ImplName;
  dtypes: DType[];
  /** a and b hold the operands as stored (transposed when s.ta / s.tb). */
  prepare(s: Shape, dtype: DType, a: Float32Array, b: Float32Array): Promise<Runner>;
}

interface Row {
  bench: 'matmul';
  impl: ImplName;
  dtype: DType;
  m: number;
  n: number;
  k: number;
  ms: number;
  gflops: number;
  cpu_ms: number;
  /** Sampled max|got − ref| / max|ref| against a float64 product. */
  err: number;
  /** Operand layouts when not both plain: 'tn' = Aᵀ·B, 'nt' = A·Bᵀ, 'tt'. */
  layout?: 'tn' | 'nt' | 'tt';
}

const plain = (m: number, n: number, k: number): Shape => ({ m, n, k, ta: false, tb: false });

// One training step of a small HLIP model (4608 tokens, embed 72, MLP 288, qkv 216, patch K = 576), in
// the layouts the linear op passes: forward x·Wᵀ (W stored [out, in]), dX = G·W, dW = Xᵀ·G over tokens.
const TRAINING_SIZES: Shape[] = [
  { m: 4608, n: 216, k: 72, ta: false, tb: true }, // qkv: [4608×72]·[72×216]
  { m: 4608, n: 288, k: 72, ta: false, tb: true }, // MLP up
  { m: 4608, n: 72, k: 288, ta: false, tb: true }, // MLP down
  { m: 4608, n: 72, k: 576, ta: false, tb: true }, // patch embedding
  plain(4608, 72, 216), // dX of qkv: [4608×216]·[216×72]
  { m: 72, n: 216, k: 4608, ta: true, tb: false }, // dW: [72×4608]·[4608×216]
  { m: 288, n: 72, k: 4608, ta: true, tb: false }, // dW: [288×4608]·[4608×72]
];

const DEFAULT_SIZES: Shape[] = [
  plain(256, 256, 256),
  plain(512, 512, 512),
  plain(1024, 1024, 1024),
  plain(2048, 2048, 2048),
  plain(2744, 2304, 768), // qkv projection of a 14×14×14 CT token grid
  plain(2744, 3072, 768), // MLP up-projection
  ...TRAINING_SIZES,
];

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function parseSizes(s: string | undefined): Shape[] {
  if (!s) return DEFAULT_SIZES;
  return s.split(',').flatMap((t) => {
    if (t === 'training') return TRAINING_SIZES;
    const [dims = '', trans = ''] = t.split(':');
    const p = dims.split('x').map(Number);
    const [m, n, k] = p.length === 1 ? [p[0], p[0], p[0]] : p;
    if (![m, n, k].every((v) => Number.isInteger(v) && (v as number) > 0) || !['', 'at', 'bt', 'abt'].includes(trans)) throw new Error(`bad size ${t} (use 1024, MxNxK or MxNxK:at|bt|abt)`);
    return [{ m: m as number, n: n as number, k: k as number, ta: trans.startsWith('a'), tb: trans.endsWith('bt') }];
  });
}

function layoutOf(s: Shape): Row['layout'] {
  return s.ta ? (s.tb ? 'tt' : 'tn') : s.tb ? 'nt' : undefined;
}

function label(s: Shape): string {
  return `${s.m}×${s.n}×${s.k}${s.ta || s.tb ? ` ${layoutOf(s)}` : ''}`;
}

/** Deterministic data in [-1, 1) (mulberry32). */
function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** Sampled error of c against the float64 product of a and b (as stored, see Shape). */
function sampledError(a: Float32Array, b: Float32Array, c: Float32Array, sh: Shape): number {
  const { m, n, k } = sh;
  let num = 0;
  let den = 0;
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919 + 13) % m;
    const j = (s * 104729 + 7) % n;
    let ref = 0;
    for (let t = 0; t < k; t++) ref += (a[sh.ta ? t * m + i : i * k + t] as number) * (b[sh.tb ? j * k + t : t * n + j] as number);
    num = Math.max(num, Math.abs((c[i * n + j] as number) - ref));
    den = Math.max(den, Math.abs(ref));
  }
  return den ? num / den : num;
}

function hlipImpl(dev: Device): Impl {
  return {
    name: 'hlip',
    dtypes: dev.caps.f16 ? ['f32', 'f16'] : ['f32'],
    async prepare(s, dtype, a, b) {
      const ta = Tensor.from(dev, a, s.ta ? [s.k, s.m] : [s.m, s.k], dtype);
      const tb = Tensor.from(dev, b, s.tb ? [s.n, s.k] : [s.k, s.n], dtype);
      // Transposed operands as views (no copy), as the linear op passes them.
      const va = s.ta ? ops.transpose(ta) : ta;
      const vb = s.tb ? ops.transpose(tb) : tb;
      return {
        async chain(count, keep) {
          let last: Tensor | null = null;
          for (let i = 0; i < count; i++) {
            const c = ops.matmul(va, vb);
            last?.dispose();
            last = c;
          }
          const data = (await (last as Tensor).data()) as Float32Array;
          (last as Tensor).dispose();
          return keep ? data : null;
        },
        dispose() {
          for (const t of new Set([va, vb, ta, tb])) t.dispose();
        },
      };
    },
  };
}

async function tfjsImpl(): Promise<Impl> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
  await tf.ready();
  return {
    name: 'tfjs-webgpu',
    dtypes: ['f32'], // tfjs has no f16 tensors
    async prepare(s, _dtype, a, b) {
      const ta = tf.tensor2d(a, s.ta ? [s.k, s.m] : [s.m, s.k], 'float32');
      const tb = tf.tensor2d(b, s.tb ? [s.n, s.k] : [s.k, s.n], 'float32');
      return {
        async chain(count, keep) {
          let last: ReturnType<typeof tf.matMul> | null = null;
          for (let i = 0; i < count; i++) {
            const c = tf.matMul(ta, tb, s.ta, s.tb);
            last?.dispose();
            last = c;
          }
          const data = (await last!.data()) as Float32Array;
          last!.dispose();
          return keep ? data : null;
        },
        dispose() {
          ta.dispose();
          tb.dispose();
        },
      };
    },
  };
}

async function jaxImpl(): Promise<Impl> {
  const jax = await import('@jax-js/jax');
  const have = await jax.init('webgpu');
  if (!have.includes('webgpu')) throw new Error(`jax.init('webgpu') gave only [${have.join(', ')}]`);
  jax.defaultDevice('webgpu');
  const np = jax.numpy;
  type JArray = ReturnType<typeof np.matmul>;
  return {
    name: 'jax-js',
    // jax-js f16 arrays need the Float16Array global (Node ≥ 24 or a browser).
    dtypes: typeof (globalThis as { Float16Array?: unknown }).Float16Array === 'function' ? ['f32', 'f16'] : ['f32'],
    async prepare(s, dtype, a, b) {
      const mk = (d: Float32Array, shape: number[]): JArray => {
        const x = np.array(d).reshape(shape);
        return dtype === 'f16' ? x.astype(np.float16) : x;
      };
      const ja = mk(a, s.ta ? [s.k, s.m] : [s.m, s.k]);
      const jb = mk(b, s.tb ? [s.n, s.k] : [s.k, s.n]);
      return {
        async chain(count, keep) {
          // jax-js is lazy: submit all, then wait on the earlier ones and read back the last.
          const outs: JArray[] = [];
          for (let i = 0; i < count; i++) outs.push(np.matmul(s.ta ? ja.ref.transpose() : ja.ref, s.tb ? jb.ref.transpose() : jb.ref));
          const last = outs[outs.length - 1] as JArray;
          const [data] = await Promise.all([last.data(), ...outs.slice(0, -1).map((o) => o.blockUntilReady())]);
          // data() consumed the last one.
          for (const o of outs.slice(0, -1)) o.dispose();
          return keep ? Float32Array.from(data as ArrayLike<number>) : null;
        },
        dispose() {
          ja.dispose();
          jb.dispose();
        },
      };
    },
  };
}

/** dawn.node polls with setImmediate while a GPU promise is pending; 1 ms timers free that core. */
function throttlePolling(): void {
  const g = globalThis as unknown as { setImmediate: (fn: (...a: unknown[]) => void, ...a: unknown[]) => unknown };
  g.setImmediate = (fn, ...a) => setTimeout(fn, 1, ...a);
}

async function time(runner: Runner, flops: number, repeats: number): Promise<{ ms: number; cpuMs: number; chain: number }> {
  const chain = Math.max(1, Math.min(32, Math.round(4e9 / flops)));
  const per: number[] = [];
  const c0 = process.cpuUsage();
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await runner.chain(chain);
    per.push((performance.now() - t0) / chain);
  }
  const c = process.cpuUsage(c0);
  per.sort((x, y) => x - y);
  const mid = per.length >> 1;
  const ms = per.length % 2 ? (per[mid] as number) : ((per[mid - 1] as number) + (per[mid] as number)) / 2;
  return { ms, cpuMs: (c.user + c.system) / 1000 / (repeats * chain), chain };
}

async function run(ctx: BenchContext): Promise<void> {
  const note = (s: string) => console.log(ctx.json ? `# ${s}` : s);
  const sizes = parseSizes(option(ctx.args, '--sizes'));
  const repeats = Math.max(5, Number(option(ctx.args, '--repeats') ?? 5));
  const only = option(ctx.args, '--impl')?.split(',');
  const dtypes = (option(ctx.args, '--dtype')?.split(',') ?? ['f32', 'f16']) as DType[];
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  const webgpu = (await import('webgpu')) as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  for (const [k, v] of Object.entries(webgpu.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  // One GPU entry point for everyone; it stays referenced (dawn.node crashes if it is collected).
  const gpu = webgpu.create((process.env.HLIP_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean));
  const nav = ((globalThis as unknown as { navigator?: Record<string, unknown> }).navigator ??= {});
  Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  if (typeof nav.userAgent !== 'string') Object.defineProperty(nav, 'userAgent', { value: `Node.js/${process.versions.node}`, configurable: true });
  if (!ctx.args.includes('--busy-poll')) throttlePolling();
  const dev = await createNodeDevice({ gpu });
  note(`adapter: ${dev.adapter.description || dev.adapter.device} (${dev.adapter.architecture}); f16 ${dev.caps.f16}; cpus ${(await import('node:os')).cpus().length}`);
  note(`dawn polling: ${ctx.args.includes('--busy-poll') ? 'busy (setImmediate)' : 'setImmediate throttled to 1 ms timers for all implementations (--busy-poll to disable)'}`);

  const impls: Impl[] = [];
  const want = (n: ImplName) => !only || only.includes(n);
  if (want('hlip')) impls.push(hlipImpl(dev));
  for (const [name, make] of [['tfjs-webgpu', tfjsImpl], ['jax-js', jaxImpl]] as const) {
    if (!want(name)) continue;
    try {
      impls.push(await make());
    } catch (e) {
      note(`${name} cannot run: ${(e as Error).message}`);
    }
  }

  for (const impl of impls) {
    for (const d of dtypes) if (!impl.dtypes.includes(d)) note(`${impl.name} has no ${d} rows: ${impl.name === 'jax-js' ? 'its f16 arrays need the Float16Array global (Node >= 24)' : impl.name === 'hlip' ? 'the adapter lacks shader-f16' : 'no f16 tensors'}`);
  }
  const rows: Row[] = [];
  if (!ctx.json) console.log(`${'impl'.padEnd(12)} ${'dtype'.padEnd(5)} ${'m×n×k'.padEnd(19)} ${'ms'.padStart(10)} ${'GFLOP/s'.padStart(9)} ${'cpu ms'.padStart(10)} ${'err'.padStart(9)}`);
  for (const sh of sizes) {
    const { m, n, k } = sh;
    const a = random(m * k, 1);
    const b = random(k * n, 2);
    const flops = 2 * m * n * k;
    const layout = layoutOf(sh);
    for (const dtype of dtypes) {
      for (const impl of impls) {
        if (!impl.dtypes.includes(dtype)) continue;
        let runner: Runner | null = null;
        try {
          runner = await impl.prepare(sh, dtype, a, b);
          // Warm-up (compiles pipelines) doubles as the correctness check.
          const out = (await runner.chain(1, true)) as Float32Array;
          const err = sampledError(a, b, out, sh);
          const t = await time(runner, flops, repeats);
          const row: Row = { bench: 'matmul', impl: impl.name, dtype, m, n, k, ms: round(t.ms, 3), gflops: round(flops / t.ms / 1e6, 3), cpu_ms: round(t.cpuMs, 3), err: Number(err.toPrecision(3)), ...(layout ? { layout } : {}) };
          rows.push(row);
          if (err > (dtype === 'f16' ? 3e-2 : 1e-4)) note(`warning: ${impl.name} ${dtype} ${label(sh)} sampled error ${err.toExponential(2)}`);
          if (ctx.json) console.log(JSON.stringify(row));
          else console.log(`${impl.name.padEnd(12)} ${dtype.padEnd(5)} ${label(sh).padEnd(19)} ${t.ms.toFixed(2).padStart(10)} ${row.gflops.toFixed(2).padStart(9)} ${t.cpuMs.toFixed(1).padStart(10)} ${err.toExponential(1).padStart(9)}`);
        } catch (e) {
          note(`${impl.name} ${dtype} ${label(sh)} failed: ${(e as Error).message}`);
        } finally {
          runner?.dispose();
        }
      }
    }
  }
  // Speed-ups of hlip over each anchor, per shape (f32).
  for (const r of rows) {
    if (r.impl !== 'hlip') continue;
    const parts = rows
      .filter((o) => o.impl !== 'hlip' && o.dtype === r.dtype && o.m === r.m && o.n === r.n && o.k === r.k && o.layout === r.layout)
      .map((o) => `${(r.gflops / o.gflops).toFixed(2)}× ${o.impl}`);
    if (parts.length) note(`hlip ${r.dtype} ${r.m}×${r.n}×${r.k}${r.layout ? ` ${r.layout}` : ''}: ${parts.join(', ')}`);
  }
  dev.destroy();
}

function round(v: number, digits: number): number {
  return Number(v.toFixed(digits));
}

registerBench('matmul', '[--json] [--sizes 1024,MxNxK,MxNxK:at|bt|abt,training] [--impl hlip,tfjs-webgpu,jax-js] [--dtype f32,f16] [--repeats n] [--busy-poll]', run);
