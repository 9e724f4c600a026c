import epilogueSrc from '../../shaders/matmul_epilogue.wgsl';
import genericSrc from '../../shaders/matmul.wgsl';
import sgSrc from '../../shaders/matmul_sg.wgsl';
import packSrc from '../../shaders/matmul_pack.wgsl';
import { DTypeError, GpuError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { directMajor, matmulDirect, planDirect } from './matmul_direct.js';
import { fourLaneSimd } from './lanes.js';
import { matmulSg4, sg4Capable } from './matmul_sg4.js';
import { grid, Uniforms, type View } from './view.js';

const GENERIC = `${genericSrc}\n${epilogueSrc}`;
const SG = `${sgSrc}\n${epilogueSrc}`;

/** Fused epilogue: out = gelu?(a·b + bias), optionally also storing the pre-activation a·b + bias. */
export interface MatmulEpilogue {
  /** [N] view (any stride), added to every row. */
  bias?: View;
  gelu?: boolean;
  /**
   * Also store the pre-activation (before GELU) into out's buffer at this element offset, with out's
   * strides. It shares out's buffer so the kernel binds one writable buffer.
   */
  preOffset?: number;
}

/**
 * Which kernel family ran (tests use it to cover every path): the portable one, on CPU adapters with
 * 8-wide subgroups (llvmpipe) the direct kernel (operands read in place) or the packed-window one (any
 * A layout via a packed copy), or with 4-wide subgroups (SwiftShader) the subgroup-broadcast kernel.
 */
export type MatmulPath = 'generic' | 'cpu-direct' | 'cpu-subgroup' | 'sg4';

export interface MatmulOptions {
  /** Force a kernel family (tests); default picks from the adapter and the shape. */
  path?: MatmulPath;
  /** A's rows are readable, and zero, up to the next multiple of 32 columns (a packed copy). */
  aPadded?: boolean;
}

// CPU-path tiling. TM rows per workgroup; the B window is WIN_ROWS × 32 f32 = 64 KiB (the uniform
// binding limit WebGPU guarantees).
const TM = 32;
const G = 4;
const WIN_ROWS = 512;
const WIN_BYTES = WIN_ROWS * 32 * 4;
// Scratch windows kept per device (8 MiB): strips are packed and consumed in groups that fit.
const MAX_WINDOWS = 128;

interface Scratch {
  buffer: GPUBuffer;
  windows: number;
}
const scratch = new WeakMap<Device, Scratch>();
const sgCapable = new WeakMap<Device, boolean>();

/**
 * The subgroup path suits CPU adapters (llvmpipe): 8-wide subgroups, a software architecture. On
 * GPUs the generic kernel is the better default.
 */
export function cpuSubgroupPathAvailable(dev: Device): boolean {
  let ok = sgCapable.get(dev);
  if (ok === undefined) {
    const info = (dev.gpu as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    ok = dev.caps.subgroups && info?.subgroupMinSize === 8 && info?.subgroupMaxSize === 8 && (dev.adapter.architecture === 'software' || /llvmpipe/.test(dev.adapter.description));
    sgCapable.set(dev, ok);
  }
  return ok;
}

function windowBuffer(dev: Device, windows: number): GPUBuffer {
  const have = scratch.get(dev);
  if (have && have.windows >= windows) return have.buffer;
  if (have) {
    // Recorded work may still name the old buffer: submit it before destroying.
    dev.flush();
    have.buffer.destroy();
    dev.forgetBindGroups();
  }
  const buffer = dev.gpu.createBuffer({ size: windows * WIN_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE, label: 'matmul B windows' });
  scratch.set(dev, { buffer, windows });
  return buffer;
}

// 16-byte placeholders for optional bindings a call leaves unused (bias, partial sums); two, since
// one dispatch may not bind a buffer both read-only and writable.
const dummies = new WeakMap<Device, [GPUBuffer, GPUBuffer]>();
function dummy(dev: Device, slot: 0 | 1 = 0): GPUBuffer {
  let d = dummies.get(dev);
  if (!d) {
    const make = () => dev.gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'matmul placeholder' });
    d = [make(), make()];
    dummies.set(dev, d);
  }
  return d[slot];
}

function check(a: View, b: View, out: View, e: MatmulEpilogue): { batch: number; M: number; N: number; K: number } {
  if (a.shape.length !== 3 || b.shape.length !== 3 || out.shape.length !== 3) {
    throw new ShapeError(`matmul kernel takes [batch, M, K]·[batch, K, N] → [batch, M, N] views, got ranks ${a.shape.length}, ${b.shape.length}, ${out.shape.length}`);
  }
  const [batch, M, K] = a.shape as [number, number, number];
  const [bb, K2, N] = b.shape as [number, number, number];
  if (K !== K2 || bb !== batch || out.shape[0] !== batch || out.shape[1] !== M || out.shape[2] !== N) {
    throw new ShapeError(`matmul shapes [${a.shape.join(', ')}]·[${b.shape.join(', ')}] → [${out.shape.join(', ')}] do not match`);
  }
  for (const v of [a, b, out, ...(e.bias ? [e.bias] : [])]) {
    if (v.dtype !== out.dtype) throw new DTypeError(`matmul operands must share one dtype, got ${v.dtype} and ${out.dtype}`);
  }
  if (out.dtype === 'i32') throw new DTypeError('matmul takes f32 or f16 tensors, got i32');
  if (e.bias && (e.bias.shape.length !== 1 || e.bias.shape[0] !== N)) throw new ShapeError(`matmul bias must be [${N}], got [${e.bias.shape.join(', ')}]`);
  return { batch, M, N, K };
}

/**
 * out[b] = gelu?(a[b]·b[b] + bias): a is [batch, M, K], b is [batch, K, N], out is [batch, M, N]; all
 * strided views (batch stride 0 broadcasts; a transposed operand is a view with swapped strides).
 * Records dispatches only. K = 0 gives bias (or zeros).
 */
export function matmul(dev: Device, a: View, b: View, out: View, e: MatmulEpilogue = {}, opts: MatmulOptions = {}): MatmulPath {
  const { batch, M, N, K } = check(a, b, out, e);
  if (batch * M * N === 0) return 'generic';
  const padded = opts.aPadded ?? false;
  const plan = cpuSubgroupPathAvailable(dev) && K > 0 ? planDirect(a, b, out, { batch, M, N, K }) : null;
  const auto = (): MatmulPath => {
    // 4-lane CPU SIMD (SwiftShader): the subgroup-broadcast kernel is its best matmul.
    if (fourLaneSimd(dev)) return 'sg4';
    if (plan && wantsDirect(M, N, K)) return 'cpu-direct';
    return wantsCpuPath(dev, M, N, K) && sgFriendlyA(a, K, padded) ? 'cpu-subgroup' : 'generic';
  };
  const path = opts.path ?? auto();
  if (path === 'cpu-direct') {
    if (!cpuSubgroupPathAvailable(dev)) throw new GpuError('the cpu-direct matmul path needs an adapter with 8-wide subgroups', 'limit');
    if (!plan) throw new ShapeError('the cpu-direct matmul path needs operands with a unit-stride axis and offsets and other strides that are multiples of 4, and K > 0');
    matmulDirect(dev, plan, e, batch, K);
  } else if (path === 'cpu-subgroup') {
    if (!cpuSubgroupPathAvailable(dev)) throw new GpuError('the cpu-subgroup matmul path needs an adapter with 8-wide subgroups', 'limit');
    if (!sgFriendlyA(a, K, padded)) throw new ShapeError('the cpu-subgroup matmul path needs A with unit column stride, rows and offset aligned to 4 and K a multiple of 32 (pack A first)');
    matmulSg(dev, a, b, out, e, { batch, M, N, K });
  } else if (path === 'sg4') {
    if (!sg4Capable(dev)) throw new GpuError('the sg4 matmul path needs subgroups of at least 4 invocations', 'limit');
    matmulSg4(dev, a, b, out, e, { batch, M, N, K });
  } else matmulGeneric(dev, a, b, out, e, { batch, M, N, K });
  return path;
}

/**
 * True when the CPU kernel can read A's rows as vec4s, 32 K-values at a time, without a packed copy:
 * unit column stride, 4-aligned rows and offset, and K a multiple of 32 (or rows padded with zeros).
 */
export function sgFriendlyA(a: View, K: number, padded = false): boolean {
  const [bs, rs, cs] = a.strides as [number, number, number];
  return K > 0 && (padded || K % 32 === 0) && cs === 1 && rs % 4 === 0 && bs % 4 === 0 && a.offset % 4 === 0;
}

/**
 * Where the direct CPU kernel beats the portable one on llvmpipe (measured): its dispatch has a fixed
 * cost of ~0.1–0.25 ms (the big unrolled shader), the portable kernel's per-invocation K loop is slow
 * for long K.
 */
function wantsDirect(M: number, N: number, K: number): boolean {
  const work = M * N * K;
  return K >= 32 && (work >= 1 << 19 || (K >= 256 && work >= 1 << 16));
}

/**
 * Whether the CPU path would want A as a packed copy: the direct kernel cannot read these operands in
 * place (a layout without a unit-stride axis, or misaligned for vec4 loads) and the packed-window kernel
 * cannot read A as it is either.
 */
export function cpuPathWantsPackedA(dev: Device, a: View, b: View): boolean {
  const [batch, M, K] = a.shape as [number, number, number];
  const N = b.shape[2] as number;
  if (!wantsCpuPath(dev, M, N, K)) return false;
  return !(directMajor(a, batch) && directMajor(b, batch)) && !sgFriendlyA(a, K);
}

/**
 * The CPU kernel pays a B repack (K·N) and works in 32-row tiles; it wins once the product is big.
 * Callers that can repack A (matmul op) ask `wantsCpuPath` first and pack when needed.
 */
export function wantsCpuPath(dev: Device, M: number, N: number, K: number): boolean {
  return cpuSubgroupPathAvailable(dev) && M >= 32 && N >= 16 && K >= 32 && M * N * K >= 1 << 21;
}

function flagBits(e: MatmulEpilogue): { bias: boolean; gelu: boolean; pre: boolean } {
  return { bias: !!e.bias, gelu: !!e.gelu, pre: e.preOffset !== undefined };
}

function matmulGeneric(dev: Device, a: View, b: View, out: View, e: MatmulEpilogue, d: { batch: number; M: number; N: number; K: number }): void {
  const f = flagBits(e);
  const [abs, ars, acs] = a.strides as [number, number, number];
  const [bbs, brs, bcs] = b.strides as [number, number, number];
  const [obs, ors, ocs] = out.strides as [number, number, number];
  const u = new Uniforms(28)
    .u(d.M, d.N, d.K, (f.bias ? 1 : 0) | (f.gelu ? 2 : 0) | (f.pre ? 4 : 0))
    .u(a.offset, ars, acs, d.batch > 1 ? abs : 0)
    .u(b.offset, brs, bcs, d.batch > 1 ? bbs : 0)
    .u(out.offset, ors, ocs, obs)
    .u(e.preOffset ?? 0, e.bias?.offset ?? 0, e.bias?.strides[0] ?? 0, 0);
  const kernel = dev.pipelines.get('matmul', GENERIC, { dtype: out.dtype === 'f16' ? 'f16' : 'f32' });
  const buffers: GPUBuffer[] = [a.buffer, b.buffer, out.buffer, e.bias?.buffer ?? dummy(dev)];
  const gx = Math.ceil(d.N / 32);
  const gy = Math.ceil(d.M / 32);
  if (gx > dev.caps.maxWorkgroupsPerDim || gy > dev.caps.maxWorkgroupsPerDim || d.batch > dev.caps.maxWorkgroupsPerDim) {
    throw new GpuError(`matmul of ${d.batch}×${d.M}×${d.N} exceeds the dispatch limit of ${dev.caps.maxWorkgroupsPerDim} workgroups per dimension`, 'limit');
  }
  dev.dispatch(kernel, buffers, u.bytes(), [gx, gy, d.batch]);
}

/**
 * Straight-line code for the CPU kernel: TM accumulators and the 32-step body. Rows are processed in
 * groups of G so a group's accumulators stay in registers across the 32 steps (the B values are
 * loaded once per step and reused by every group).
 */
function sgSource(): Record<string, string> {
  let decl = '';
  for (let i = 0; i < TM; i++) decl += `  let r${i} = abase + min(m0 + ${i}u, P.M - 1u) * P.a_rs;\n  var c${i} = tile[${i}];\n`;
  let body = '';
  for (let kk = 0; kk < 32; kk++) body += `    let b${kk} = W[wb + ${kk * 8}u];\n`;
  const comp = ['x', 'y', 'z', 'w'];
  for (let g0 = 0; g0 < TM; g0 += G) {
    const rows = [...Array(Math.min(G, TM - g0)).keys()].map((j) => g0 + j);
    for (const i of rows) body += `    let a${i} = A[r${i} + ka];\n`;
    for (let kk = 0; kk < 32; kk++) {
      for (const i of rows) body += `    c${i} = fma(vec4<f32>(subgroupBroadcast(f32(a${i}.${comp[kk % 4]}), ${kk >> 2}u)), b${kk}, c${i});\n`;
    }
  }
  let stash = '';
  for (let i = 0; i < TM; i++) stash += `  tile[${i}] = c${i};\n`;
  return { TM: String(TM), DECL: decl, BODY: body, STASH: stash };
}
let sgBody: Record<string, string> | null = null;

function matmulSg(dev: Device, a: View, b: View, out: View, e: MatmulEpilogue, d: { batch: number; M: number; N: number; K: number }): void {
  const { batch, M, N, K } = d;
  const f = flagBits(e);
  const nchunks = Math.ceil(K / WIN_ROWS);
  const chunk = Math.ceil(K / nchunks / 32) * 32;
  const nstrips = Math.ceil(N / 32);
  const [abs, ars] = a.strides as [number, number, number];
  const [bbs, brs, bcs] = b.strides as [number, number, number];
  const [obs, ors, ocs] = out.strides as [number, number, number];
  // A broadcast B is packed once and all batches of a run in one dispatch (grid y); else one per batch.
  const bShared = batch === 1 || bbs === 0;
  const bBatches = bShared ? 1 : batch;
  const zb = bShared ? batch : 1;
  const rowTiles = Math.ceil(M / TM);
  if (rowTiles > dev.caps.maxWorkgroupsPerDim || zb > dev.caps.maxWorkgroupsPerDim) {
    throw new GpuError(`matmul of ${batch}×${M}×${N} exceeds the dispatch limit of ${dev.caps.maxWorkgroupsPerDim} workgroups per dimension`, 'limit');
  }
  const dtype = out.dtype === 'f16' ? 'f16' : 'f32';
  sgBody ??= sgSource();
  const kernel = dev.pipelines.get('matmul-cpu', SG, { dtype, defines: sgBody });
  const pack = dev.pipelines.get('matmul-pack', packSrc, { dtype });
  const totalStrips = bBatches * nstrips;
  const stripsPerGroup = Math.max(1, Math.floor(MAX_WINDOWS / nchunks));
  const win = windowBuffer(dev, Math.min(totalStrips, stripsPerGroup) * nchunks);
  // Partial sums across K-chunks: one strip's worth ([zb, rows, 32] f32), reused strip after strip.
  const accRows = rowTiles * TM;
  const accBytes = nchunks > 1 ? zb * accRows * 32 * 4 : 0;
  const acc = accBytes ? dev.pool.acquire(accBytes) : dummy(dev, 1);
  const bias = e.bias?.buffer ?? dummy(dev);
  for (let g0 = 0; g0 < totalStrips; g0 += stripsPerGroup) {
    const gn = Math.min(stripsPerGroup, totalStrips - g0);
    const total = gn * nchunks * chunk * 8;
    const pu = new Uniforms(16).u(K, N, chunk, nchunks).u(b.offset, brs, bcs, bbs).u(g0, nstrips, total, 0);
    dev.dispatch(pack, [b.buffer, win], pu.bytes(), grid(Math.ceil(total / 256), dev.caps.maxWorkgroupsPerDim));
    for (let gs = 0; gs < gn; gs++) {
      const s = (g0 + gs) % nstrips;
      const bt = Math.floor((g0 + gs) / nstrips); // the B batch (0 when B is shared)
      for (let c = 0; c < nchunks; c++) {
        const klen = Math.ceil(Math.min(chunk, K - c * chunk) / 32) * 32;
        const flags = (c === 0 ? 1 : 0) | (c === nchunks - 1 ? 2 : 0) | (f.bias ? 4 : 0) | (f.gelu ? 8 : 0) | (f.pre ? 16 : 0);
        // A batch bt's rows (when B is per-batch) are reached through the offsets; grid y walks batches otherwise.
        const aOff = a.offset + (bShared ? 0 : bt * abs);
        const oOff = out.offset + (bShared ? 0 : bt * obs);
        const preOff = (e.preOffset ?? 0) + (bShared ? 0 : bt * obs);
        const u = new Uniforms(28)
          .u(M, N, klen, flags)
          .u(aOff / 4, ars / 4, bShared && batch > 1 ? abs / 4 : 0, (c * chunk) / 4)
          .u(oOff, ors, ocs, bShared ? obs : 0)
          .u(s * 32, preOff, e.bias?.offset ?? 0, e.bias?.strides[0] ?? 0)
          .u(accRows, TM, 0, 0);
        const w = { buffer: win, offset: (gs * nchunks + c) * WIN_BYTES, size: WIN_BYTES };
        dev.dispatch(kernel, [a.buffer, w, out.buffer, acc, bias], u.bytes(), [rowTiles, zb]);
      }
    }
  }
  if (accBytes) dev.pool.release(acc);
}
