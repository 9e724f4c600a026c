import common from '../../shaders/attention_common.wgsl';
import fwdSrc from '../../shaders/attention_fwd.wgsl';
import bwdSrc from '../../shaders/attention_bwd.wgsl';
import fwdSgSrc from '../../shaders/attention_fwd_sg.wgsl';
import dsumSrc from '../../shaders/attention_dsum.wgsl';
import fusedSgSrc from '../../shaders/attention_bwd_fused_sg.wgsl';
import reduceSrc from '../../shaders/attention_dq_reduce.wgsl';
import prepSrc from '../../shaders/attention_bwd_prep.wgsl';
import { GpuError, ShapeError } from '../errors.js';
import type { Binding, Device } from '../gpu/device.js';
import { fourLaneSimd } from './lanes.js';
import { grid, Uniforms } from './view.js';

const SOURCES = {
  fwd: `${common}\n${fwdSrc}`,
  bwd: `${common}\n${bwdSrc}`,
  fwd_sg: `${common}\n${fwdSgSrc}`,
  bwd_fused_sg: fusedSgSrc,
};
type SourceName = keyof typeof SOURCES;

/**
 * The kernels' source-level switches, applied before the pipeline cache's `{{NAME}}` defines:
 * `//#if vec` … `//#else` … `//#endif` keeps one branch (likewise `//#if unroll`: straight-line code
 * instead of loops over the head dim's vec4s, for SwiftShader); `//#steps` … `//#endsteps` repeats its
 * body once per sub-step of four subgroup rows (`$s` = 0 … SG/4−1); `//#rows` … `//#endrows` repeats
 * its body once per row an invocation owns (`$r`); `//#unroll` … `//#end` repeats its body once per
 * vec4 of the head dim (`$c` = 0 … nv−1). Memoised: one string per variant, so the pipeline cache
 * compares the same string object each launch.
 */
const expanded = new Map<string, string>();
function expand(name: SourceName, nv: number, rows: number, flags: { vec: boolean; unroll: boolean }, steps = 1): string {
  const key = `${name}|${nv}|${rows}|${flags.vec}|${flags.unroll}|${steps}`;
  let out = expanded.get(key);
  if (out === undefined) {
    const repeat = (body: string, n: number, mark: RegExp) => {
      let r = '';
      for (let i = 0; i < n; i++) r += body.replace(mark, String(i));
      return r;
    };
    out = SOURCES[name]
      .replace(/^[ \t]*\/\/#if (vec|unroll)[^\n]*\n([\s\S]*?)^[ \t]*\/\/#else[^\n]*\n([\s\S]*?)^[ \t]*\/\/#endif[^\n]*\n/gm, (_, f: 'vec' | 'unroll', a: string, b: string) => (flags[f] ? a : b))
      .replace(/^[ \t]*\/\/#steps[^\n]*\n([\s\S]*?)^[ \t]*\/\/#endsteps[^\n]*\n/gm, (_, body: string) => repeat(body, steps, /\$s/g))
      .replace(/^[ \t]*\/\/#rows[^\n]*\n([\s\S]*?)^[ \t]*\/\/#endrows[^\n]*\n/gm, (_, body: string) => repeat(body, rows, /\$r/g))
      .replace(/^[ \t]*\/\/#unroll[^\n]*\n([\s\S]*?)^[ \t]*\/\/#end[^\n]*\n/gm, (_, body: string) => repeat(body, nv, /\$c/g));
    expanded.set(key, out);
  }
  return out;
}

/**
 * Attention windows over a set of patch rows (docs/attention.md). Window w is `prefix` prefix rows
 * (rows w·prefix… of the prefix operands) followed by the patch rows start[w] … start[w]+len[w]−1.
 * Its keys are the prefix rows and its first keyLen[w] patch rows (key padding). The windows must tile
 * the patch rows 0 … rows−1 exactly (every row in one window), so every gradient row is written once.
 * Host-side only: the GPU table is uploaded per launch into a pooled buffer.
 */
export class WindowTable {
  readonly count: number;
  readonly prefix: number;
  /** Patch rows covered. */
  readonly rows: number;
  readonly starts: Uint32Array;
  readonly lens: Uint32Array;
  readonly keyLens: Uint32Array;
  /** Longest window, prefix rows included. */
  readonly maxRows: number;
  private cache = new Map<number, { data: Uint32Array; blocks: number; blockRows: Uint32Array }>();

  constructor(starts: ArrayLike<number>, lens: ArrayLike<number>, prefix = 0, keyLens?: ArrayLike<number>) {
    const n = starts.length;
    if (lens.length !== n || (keyLens && keyLens.length !== n)) throw new ShapeError('window table: starts, lens and keyLens differ in length');
    if (!Number.isInteger(prefix) || prefix < 0) throw new ShapeError(`window table: invalid prefix count ${prefix}`);
    this.count = n;
    this.prefix = prefix;
    this.starts = Uint32Array.from(starts);
    this.lens = Uint32Array.from(lens);
    this.keyLens = keyLens ? Uint32Array.from(keyLens) : Uint32Array.from(lens);
    const order = [...this.starts.keys()].sort((a, b) => (this.starts[a] as number) - (this.starts[b] as number));
    let next = 0;
    let maxRows = 0;
    for (const w of order) {
      const s = starts[w] as number;
      const l = lens[w] as number;
      const kl = this.keyLens[w] as number;
      if (!Number.isInteger(s) || !Number.isInteger(l) || l < 0 || s < 0) throw new ShapeError(`window ${w}: invalid start ${s} / length ${l}`);
      if (kl > l) throw new ShapeError(`window ${w}: key length ${kl} exceeds its ${l} rows`);
      if (s !== next) throw new ShapeError(`windows must tile the patch rows: window ${w} starts at ${s}, expected ${next}`);
      if (prefix + kl === 0 && l > 0) throw new ShapeError(`window ${w} has queries but no keys`);
      next = s + l;
      maxRows = Math.max(maxRows, prefix + l);
    }
    this.rows = next;
    this.maxRows = maxRows;
  }

  /** Windows laid end to end in order: window w holds lens[w] rows. */
  static contiguous(lens: ArrayLike<number>, prefix = 0, keyLens?: ArrayLike<number>): WindowTable {
    const starts = new Array<number>(lens.length);
    let acc = 0;
    for (let i = 0; i < lens.length; i++) {
      starts[i] = acc;
      acc += lens[i] as number;
    }
    return new WindowTable(starts, lens, prefix, keyLens);
  }

  /** `count` windows of `len` rows each. */
  static uniform(count: number, len: number, prefix = 0): WindowTable {
    return WindowTable.contiguous(new Array<number>(count).fill(len), prefix);
  }

  /** Prefix rows over all windows. */
  get prefixRows(): number {
    return this.count * this.prefix;
  }

  /** Output rows: the patch rows, then the prefix rows window by window. */
  get outRows(): number {
    return this.rows + this.prefixRows;
  }

  /**
   * GPU table for workgroups of `blk` rows: per window (start, len, keyLen, 0), then per block
   * (window, first local row). Blocks of one window are consecutive.
   */
  layout(blk: number): { data: Uint32Array; blocks: number; blockRows: Uint32Array } {
    let hit = this.cache.get(blk);
    if (hit) return hit;
    let blocks = 0;
    for (let w = 0; w < this.count; w++) blocks += Math.ceil((this.prefix + (this.lens[w] as number)) / blk);
    const data = new Uint32Array(4 * this.count + 2 * blocks);
    const blockRows = new Uint32Array(blocks);
    let b = 0;
    for (let w = 0; w < this.count; w++) {
      data.set([this.starts[w] as number, this.lens[w] as number, this.keyLens[w] as number, 0], 4 * w);
      const nrows = this.prefix + (this.lens[w] as number);
      for (let i0 = 0; i0 < nrows; i0 += blk) {
        data[4 * this.count + 2 * b] = w;
        data[4 * this.count + 2 * b + 1] = i0;
        blockRows[b] = nrows;
        b++;
      }
    }
    hit = { data, blocks, blockRows };
    this.cache.set(blk, hit);
    return hit;
  }

  private groupCache = new Map<string, GroupLayout>();

  /**
   * GPU table of the fused backward: per window (start, len, keyLen, 0), then per key group
   * (window, group, first block, blocks), a window's blocks of `kb` rows split into min(groups,
   * blocks) runs of near-equal length.
   */
  groupLayout(kb: number, groups: number): GroupLayout {
    const key = `${kb}|${groups}`;
    let hit = this.groupCache.get(key);
    if (hit) return hit;
    const ents: number[] = [];
    const rows: number[] = [];
    for (let w = 0; w < this.count; w++) {
      const nrows = this.prefix + (this.lens[w] as number);
      const nb = Math.ceil(nrows / kb);
      const ng = Math.min(groups, nb);
      for (let g = 0; g < ng; g++) {
        const b0 = Math.floor((g * nb) / ng);
        const b1 = Math.floor(((g + 1) * nb) / ng);
        ents.push(w, g, b0, b1 - b0);
        rows.push(nrows);
      }
    }
    const data = new Uint32Array(4 * this.count + ents.length);
    for (let w = 0; w < this.count; w++) data.set([this.starts[w] as number, this.lens[w] as number, this.keyLens[w] as number, 0], 4 * w);
    data.set(ents, 4 * this.count);
    const entries = rows.length;
    const steps = new Uint32Array(entries);
    for (let e = 0; e < entries; e++) steps[e] = ents[4 * e + 3] as number;
    hit = { data, entries, rows: Uint32Array.from(rows), steps };
    this.groupCache.set(key, hit);
    return hit;
  }
}

/** Key-group table of the fused backward (see WindowTable.groupLayout). */
export interface GroupLayout {
  data: Uint32Array;
  entries: number;
  /** Rows (queries) of each entry's window. */
  rows: Uint32Array;
  /** Key blocks of each entry. */
  steps: Uint32Array;
}

/** Where an operand lives: element offset, stride between rows and between heads (d is contiguous). */
export interface Operand {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly rowStride: number;
  readonly headStride: number;
}

export interface AttentionOperands {
  q: Operand;
  k: Operand;
  v: Operand;
  /** Prefix rows ([windows·prefix, heads, dim]); all three in one buffer. Required when prefix > 0. */
  pq?: Operand;
  pk?: Operand;
  pv?: Operand;
}

export interface AttentionConfig {
  heads: number;
  headDim: number;
  dtype: 'f32' | 'f16';
  scale: number;
  causal: boolean;
  table: WindowTable;
  /** One u32 per patch row (0 = never a key), or null. */
  keyMask: GPUBuffer | null;
  /** Upper bound of (query rows × key rows × head dim × heads) per dispatch, so none runs for seconds. */
  workBudget?: number;
  /** Cap on the fused backward's scratch bytes per pass of heads (default DEFAULT_SCRATCH_BYTES). */
  scratchBytes?: number;
  variant?: AttentionVariant;
}

/** The combined output and its log-sum-exp, stored in one buffer (LSE after O, 256-byte aligned). */
export interface SavedOutput {
  readonly buffer: GPUBuffer;
  readonly oBytes: number;
  readonly lseOffset: number;
  readonly lseBytes: number;
}

/** Gradients of the six operands, all in one buffer. */
export interface GradTargets {
  buffer: GPUBuffer;
  q: Operand;
  k: Operand;
  v: Operand;
  pq?: Operand;
  pk?: Operand;
  pv?: Operand;
}

export const DEFAULT_WORK_BUDGET = 2 ** 30;
export const MIN_HEAD_DIM = 1;
export const MAX_HEAD_DIM = 256;

/** Byte layout of the buffer holding O ([rows, heads, dim] of T) and LSE ([rows, heads] f32). */
export function savedLayout(rows: number, heads: number, dim: number, dtype: 'f32' | 'f16'): { oBytes: number; lseOffset: number; lseBytes: number; total: number } {
  const oBytes = Math.max(4, Math.ceil((rows * heads * dim * (dtype === 'f16' ? 2 : 4)) / 4) * 4);
  const lseOffset = Math.ceil(oBytes / 256) * 256;
  const lseBytes = Math.max(4, rows * heads * 4);
  return { oBytes, lseOffset, lseBytes, total: lseOffset + lseBytes };
}

/**
 * Kernel family: `subgroup` (K/V rows shared by subgroupShuffle, no workgroup memory; much faster on
 * CPU adapters, where loads inside loops run lane by lane) or `workgroup` (tiles in workgroup memory;
 * any adapter). `auto` picks subgroup when the device has subgroups.
 */
export type AttentionVariant = 'auto' | 'subgroup' | 'workgroup';

interface Plan {
  sg: boolean;
  vec: boolean;
  /** Straight-line head-dim loops (SwiftShader: see lanes.ts; llvmpipe's LLVM compiles loops faster). */
  unroll: boolean;
  /** Subgroup size (subgroup kernels). */
  sgs: number;
  /** Rows per invocation (subgroup kernels). */
  r: number;
  /** Rows per workgroup (= block table granularity). */
  blk: number;
  /** Rows per invocation of the backward subgroup kernels (fewer: they hold twice the registers). */
  rB: number;
  blkB: number;
  tileF: number;
  tileB: number;
}

/** Widest head the subgroup kernels get automatically on 4-lane CPU SIMD (SwiftShader). */
const NARROW_MAX_DIM = 32;

/** Windows of at least this many rows get the subgroup kernels with twice the rows per invocation. */
const LONG_WINDOW = 1024;

/** A fixed subgroup size the subgroup kernels can be compiled for, or 0. */
function fixedSubgroupSize(dev: Device): number {
  if (!dev.caps.subgroups) return 0;
  const lo = dev.caps.subgroupMinSize;
  const hi = dev.caps.subgroupMaxSize;
  return lo === hi && lo >= 4 && lo <= Math.min(128, dev.caps.maxInvocations) ? lo : 0;
}

/**
 * Mesa llvmpipe/lavapipe: SIMD across invocations on CPU cores, where the subgroup family is several
 * times faster. (Fixed 4-wide subgroups are a CPU's 128-bit SIMD too, SwiftShader's: see `plan`.)
 */
function cpuAdapter(dev: Device): boolean {
  const a = dev.adapter;
  return a.architecture === 'software' || /llvmpipe|lavapipe/i.test(`${a.description} ${a.device}`);
}

const unrollForced = new WeakMap<Device, boolean>();

/**
 * Forces the subgroup kernels' straight-line head-dim code (SwiftShader's variant) on or off for
 * `dev` (tests run it on llvmpipe too); 'auto' restores the choice by adapter.
 */
export function setAttentionUnroll(dev: Device, v: boolean | 'auto'): void {
  if (v === 'auto') unrollForced.delete(dev);
  else unrollForced.set(dev, v);
}

/** Kernel family, vec4 access, rows per workgroup and tile heights for this device and launch. */
function plan(dev: Device, cfg: AttentionConfig, ops: readonly (Operand | undefined)[]): Plan {
  const want = cfg.variant ?? 'auto';
  const sgs = fixedSubgroupSize(dev);
  if (want === 'subgroup' && !sgs) throw new GpuError('attention: the subgroup variant needs the subgroups feature with one fixed subgroup size', 'limit');
  // The subgroup family is tuned for CPU adapters (see attention_fwd_sg.wgsl); GPUs get the
  // workgroup-memory family unless asked otherwise.
  const cpu = cpuAdapter(dev);
  const d = cfg.headDim;
  // 4-lane CPU SIMD (SwiftShader, lanes.ts): the workgroup family's barriers and gathers cost 4-11×
  // more there (demo windows, measured). Heads up to 32 wide: at 64, Chromium lost the device while
  // compiling the subgroup kernels (Node's Dawn on the same SwiftShader compiled them in seconds).
  const narrow = fourLaneSimd(dev) && d <= NARROW_MAX_DIM;
  const sg = sgs > 0 && (want === 'subgroup' || (want === 'auto' && (cpu || narrow)));
  if (sg) {
    const vec = d % 4 === 0 && ops.every((o) => !o || (o.offset % 4 === 0 && o.rowStride % 4 === 0 && o.headStride % 4 === 0));
    // Rows per invocation: each lane-varying load (costly on CPU adapters) feeds SG·R rows, so long
    // windows get twice the rows (forward 16, backward 8 key rows: 15-20% faster on llvmpipe);
    // short ones keep 8 and 4 (less padding, smaller kernels). The backward holds twice the values
    // per row. Wider heads halve R (compile time). On GPUs registers are the limit: one row.
    // SwiftShader (4 lanes): forward 8 rows, backward 4 measured fastest on the demo's windows (2, 4
    // and 8 tried); wider heads (only when asked for) get 1.
    const long = cfg.table.maxRows >= LONG_WINDOW;
    const r = cpu ? (d > 64 ? 4 : long ? 16 : 8) : narrow ? 8 : 1;
    const rB = cpu ? (d > 64 ? 2 : long ? 8 : 4) : narrow ? 4 : 1;
    return { sg, vec, unroll: unrollForced.get(dev) ?? narrow, sgs, r, blk: r * sgs, rB, blkB: rB * sgs, tileF: 4, tileB: 4 };
  }
  const mem = dev.caps.maxWorkgroupStorage;
  const fit = (bytes: (t: number) => number) => {
    for (const t of [32, 16, 8, 4]) if (bytes(t) <= mem) return t;
    throw new GpuError(`attention head dim ${d} needs more workgroup memory than the adapter's ${mem} bytes`, 'limit');
  };
  const blk = Math.min(64, dev.caps.maxInvocations);
  return { sg, vec: false, unroll: false, sgs: 0, r: 1, blk, rB: 1, blkB: blk, tileF: fit((t) => 8 * t * d), tileB: fit((t) => 8 * t * d + 8 * t) };
}

function operandU(u: Uniforms, o: Operand | undefined): void {
  u.u(o?.offset ?? 0, o?.rowStride ?? 0, o?.headStride ?? 0, 0);
}

function params(cfg: AttentionConfig, tile: number, sgs: number, nblk: number, blk0: number, h0: number, boff: number, x: AttentionOperands, g: GradTargets | null, go: Operand | null): Uint8Array {
  const u = new Uniforms(64)
    .u(cfg.heads, cfg.table.prefix, nblk, blk0)
    .u(h0, boff, cfg.table.rows)
    .f(cfg.scale);
  for (const o of [x.q, x.k, x.v, x.pq, x.pk, x.pv]) operandU(u, o);
  for (const o of [g?.q, g?.k, g?.v, g?.pq, g?.pk, g?.pv]) operandU(u, o);
  operandU(u, go ?? undefined);
  u.u(cfg.headDim, tile, sgs, Math.ceil(cfg.headDim / 4));
  return u.bytes();
}

function check(cfg: AttentionConfig, x: AttentionOperands): void {
  const d = cfg.headDim;
  if (!Number.isInteger(d) || d < MIN_HEAD_DIM || d > MAX_HEAD_DIM) throw new ShapeError(`attention head dim ${d} outside ${MIN_HEAD_DIM}…${MAX_HEAD_DIM}`);
  if (cfg.table.prefix > 0 && !(x.pq && x.pk && x.pv)) throw new ShapeError(`attention windows have ${cfg.table.prefix} prefix rows but no prefix operands were given`);
  if (x.pq && (x.pq.buffer !== x.pk?.buffer || x.pq.buffer !== x.pv?.buffer)) throw new ShapeError('attention prefix operands must share one buffer (pack them first)');
}

function upload(dev: Device, data: Uint32Array): GPUBuffer {
  const buf = dev.pool.acquire(Math.max(16, data.byteLength));
  dev.write(buf, 0, data);
  return buf;
}

/**
 * Splits the block list into dispatches of at most `budget` work: contiguous block ranges × head
 * ranges, each within the per-dimension workgroup limit.
 */
function chunks(dev: Device, cfg: AttentionConfig, blockRows: Uint32Array, blk: number): { blk0: number; nblk: number; h0: number; nh: number }[] {
  const budget = cfg.workBudget ?? DEFAULT_WORK_BUDGET;
  const maxX = dev.caps.maxWorkgroupsPerDim;
  const cost = (b: number) => blk * (blockRows[b] as number) * cfg.headDim;
  let maxCost = 0;
  for (let b = 0; b < blockRows.length; b++) maxCost = Math.max(maxCost, cost(b));
  const nh = Math.max(1, Math.min(cfg.heads, Math.floor(budget / Math.max(1, maxCost))));
  const out: { blk0: number; nblk: number; h0: number; nh: number }[] = [];
  let b0 = 0;
  while (b0 < blockRows.length) {
    let acc = 0;
    let b1 = b0;
    while (b1 < blockRows.length && b1 - b0 < maxX && (b1 === b0 || acc + cost(b1) * nh <= budget)) acc += cost(b1++) * nh;
    for (let h0 = 0; h0 < cfg.heads; h0 += nh) out.push({ blk0: b0, nblk: b1 - b0, h0, nh: Math.min(nh, cfg.heads - h0) });
    b0 = b1;
  }
  return out;
}

/** Launch geometry: rows per workgroup, rows per invocation (subgroup kernels), tile height. */
interface Geometry {
  blk: number;
  r: number;
  tile: number;
}

function run(dev: Device, cfg: AttentionConfig, p: Plan, name: SourceName, entryPoint: string, geo: Geometry, x: AttentionOperands, bindings: (table: GPUBuffer) => Binding[], g: GradTargets | null, go: Operand | null): void {
  const { blk, r, tile } = geo;
  const { data, blocks, blockRows } = cfg.table.layout(blk);
  if (blocks === 0) return;
  const nv = Math.ceil(cfg.headDim / 4);
  const defines = { D: cfg.headDim, NV: nv, BLK: blk, TILE: tile, SG: p.sgs || 4, R: r, CAUSAL: String(cfg.causal), MASK: String(cfg.keyMask !== null) };
  const kernel = dev.pipelines.get(`attention_${name}_${entryPoint}`, expand(name, nv, r, { vec: p.vec, unroll: p.unroll }, Math.max(1, p.sgs / 4)), { dtype: cfg.dtype, entryPoint, defines });
  const table = upload(dev, data);
  const boff = 4 * cfg.table.count;
  const parts = chunks(dev, cfg, blockRows, blk);
  const binds = bindings(table);
  for (const c of parts) {
    dev.dispatch(kernel, binds, params(cfg, tile, p.sgs, c.nblk, c.blk0, c.h0, boff, x, g, go), [c.nblk, c.nh]);
    // Long launches go out one dispatch per submit, so no command buffer holds seconds of work.
    if (parts.length > 1) dev.flush();
  }
  // Safe to recycle now: later writes to this buffer are queued after the recorded dispatches.
  dev.pool.release(table);
}

function inputBindings(x: AttentionOperands, cfg: AttentionConfig, table: GPUBuffer): Binding[] {
  return [table, x.q.buffer, x.k.buffer, x.v.buffer, x.pq?.buffer ?? x.q.buffer, cfg.keyMask ?? table];
}

/** Forward: writes O and the log-sum-exp into `out`. */
export function attentionForward(dev: Device, cfg: AttentionConfig, x: AttentionOperands, out: SavedOutput): void {
  check(cfg, x);
  const p = plan(dev, cfg, [x.q, x.k, x.v, x.pq, x.pk, x.pv]);
  run(dev, cfg, p, p.sg ? 'fwd_sg' : 'fwd', 'main', { blk: p.blk, r: p.r, tile: p.tileF }, x, (table) => [
    ...inputBindings(x, cfg, table),
    { buffer: out.buffer, offset: 0, size: out.oBytes },
    { buffer: out.buffer, offset: out.lseOffset, size: out.lseBytes },
  ], null, null);
}

/** Di = rowsum(dO ∘ O) next to the saved log-sum-exp: (lse, Di) pairs at the start of `st`. */
function dsumPass(dev: Device, cfg: AttentionConfig, saved: SavedOutput, go: Operand, st: GPUBuffer): void {
  const n = cfg.table.outRows * cfg.heads;
  const dsum = dev.pipelines.get('attention_dsum', dsumSrc, { dtype: cfg.dtype, defines: { D: cfg.headDim } });
  const u = new Uniforms(8).u(n, cfg.heads, 0, 0, go.offset, go.rowStride, go.headStride, 0).bytes();
  dev.dispatch(dsum, [{ buffer: saved.buffer, offset: 0, size: saved.oBytes }, { buffer: saved.buffer, offset: saved.lseOffset, size: saved.lseBytes }, go.buffer, st], u, grid(Math.ceil(n / 64), dev.caps.maxWorkgroupsPerDim));
}

/**
 * Backward: Di = rowsum(dO ∘ O), then one fused pass per key block (subgroup kernels) or separate
 * dQ (query-owned) and dK/dV (key-owned) passes (workgroup kernels), all recomputing probabilities
 * from the saved log-sum-exp. `go` addresses dO by output row.
 */
export function attentionBackward(dev: Device, cfg: AttentionConfig, x: AttentionOperands, saved: SavedOutput, go: Operand, g: GradTargets): void {
  check(cfg, x);
  const p = plan(dev, cfg, [x.q, x.k, x.v, x.pq, x.pk, x.pv, g.q, g.k, g.v, g.pq, g.pk, g.pv, go]);
  if (p.sg) return fusedBackward(dev, cfg, p, x, saved, go, g);
  const n = cfg.table.outRows * cfg.heads;
  const st = dev.pool.acquire(Math.max(16, n * 8));
  dsumPass(dev, cfg, saved, go, st);
  const bind = (table: GPUBuffer): Binding[] => [...inputBindings(x, cfg, table), go.buffer, st, g.buffer];
  const geo = { blk: p.blkB, r: p.rB, tile: p.tileB };
  run(dev, cfg, p, 'bwd', 'dq', geo, x, bind, g, go);
  run(dev, cfg, p, 'bwd', 'dkdv', geo, x, bind, g, go);
  dev.pool.release(st);
}

/** Workgroups the fused backward aims for (windows × heads × key groups), and its key-group cap. */
const FUSED_WORKGROUPS = 32;
const MAX_KEY_GROUPS = 8;
/** Default cap on the fused backward's scratch per pass of heads (packed operands, dQ partials). */
export const DEFAULT_SCRATCH_BYTES = 16 * 2 ** 20;

/**
 * The fused backward (attention_bwd_fused_sg.wgsl), in passes over the heads: pack the pass's q, dO,
 * (lse, Di), k, v per head (attention_bwd_prep.wgsl), let the key groups walk their key blocks and
 * add dQ into per-group f32 partials ([groups, heads, output rows, 4·NV]), then sum the partials into
 * dQ (attention_dq_reduce.wgsl). Scratch is linear in the rows: (4·NV + 1 + groups·NV) vec4s per row
 * and head of a pass.
 */
function fusedBackward(dev: Device, cfg: AttentionConfig, p: Plan, x: AttentionOperands, saved: SavedOutput, go: Operand, g: GradTargets): void {
  const t = cfg.table;
  const H = cfg.heads;
  const rows = t.outRows;
  const nv = Math.ceil(cfg.headDim / 4);
  const kb = p.rB * p.sgs;
  let maxBlocks = 0;
  for (let w = 0; w < t.count; w++) maxBlocks = Math.max(maxBlocks, Math.ceil((t.prefix + (t.lens[w] as number)) / kb));
  if (maxBlocks === 0) return;
  // Bytes per head of a pass: packed records (query 2·NV+1 vec4s, key 2·NV) and the dQ partials.
  const packHead = rows * (4 * nv + 1) * 16;
  const partHead = (groups: number) => groups * rows * nv * 16;
  const cap = cfg.scratchBytes ?? DEFAULT_SCRATCH_BYTES;
  const heads = (groups: number) => Math.min(H, Math.floor(dev.caps.maxStorageBinding / Math.max(packHead, partHead(groups))), Math.max(1, Math.floor(cap / (packHead + partHead(groups)))));
  const keyGroups = (nh: number) => Math.max(1, Math.min(MAX_KEY_GROUPS, maxBlocks, Math.ceil(FUSED_WORKGROUPS / (t.count * nh))));
  // Enough key groups to occupy the adapter's threads with the heads of one pass.
  const groups = keyGroups(heads(keyGroups(H)));
  const nhPass = heads(groups);
  if (nhPass < 1) throw new GpuError(`attention backward: one head's scratch (${Math.max(packHead, partHead(groups))} bytes) exceeds the adapter's storage binding limit`, 'limit');
  const lay = t.groupLayout(kb, groups);
  const pk = dev.pool.acquire(nhPass * packHead);
  const sp = dev.pool.acquire(nhPass * partHead(groups));
  const kvoff = nhPass * rows * (2 * nv + 1);
  // vec4 stores of dK/dV when every gradient offset and stride allows them.
  const vec = cfg.headDim % 4 === 0 && [g.k, g.v, g.pk, g.pv].every((o) => !o || (o.offset % 4 === 0 && o.rowStride % 4 === 0 && o.headStride % 4 === 0));
  const defines = { D: cfg.headDim, NV: nv, SG: p.sgs, R: p.rB, CAUSAL: String(cfg.causal), MASK: String(cfg.keyMask !== null) };
  const kernel = dev.pipelines.get('attention_bwd_fused_sg', expand('bwd_fused_sg', nv, p.rB, { vec, unroll: p.unroll }, p.sgs / 4), { dtype: cfg.dtype, defines });
  const prep = dev.pipelines.get('attention_bwd_prep', prepSrc, { dtype: cfg.dtype, defines: { D: cfg.headDim, NV: nv } });
  const reduce = dev.pipelines.get('attention_dq_reduce', reduceSrc, { dtype: cfg.dtype, defines: { D: cfg.headDim, NV: nv } });
  const table = upload(dev, lay.data);
  const binds = [table, cfg.keyMask ?? table, pk, sp, g.buffer];
  const prepBinds: Binding[] = [x.q.buffer, x.k.buffer, x.v.buffer, x.pq?.buffer ?? x.q.buffer, go.buffer, { buffer: saved.buffer, offset: 0, size: saved.oBytes }, { buffer: saved.buffer, offset: saved.lseOffset, size: saved.lseBytes }, pk];
  const budget = cfg.workBudget ?? DEFAULT_WORK_BUDGET;
  const maxX = dev.caps.maxWorkgroupsPerDim;
  // Work of one step (key block) of entry e for one head.
  const cost = (e: number) => kb * (lay.rows[e] as number) * cfg.headDim;
  let maxCost = 0;
  for (let e = 0; e < lay.entries; e++) maxCost = Math.max(maxCost, cost(e));
  let dispatches = 0;
  for (let ph = 0; ph < H; ph += nhPass) {
    const nh = Math.min(nhPass, H - ph);
    const n = nh * rows;
    const pu = new Uniforms(36).u(n, nh, ph, rows, t.rows, kvoff, H).f(cfg.scale);
    for (const o of [x.q, x.k, x.v, x.pq, x.pk, x.pv, go]) operandU(pu, o);
    dev.dispatch(prep, prepBinds, pu.bytes(), grid(Math.ceil(n / 64), maxX));
    dev.clear(sp, 0, nh * partHead(groups));
    const nhd = Math.max(1, Math.min(nh, Math.floor(budget / maxCost)));
    for (let e0 = 0; e0 < lay.entries; ) {
      // Entries e0 … e1−1 and nhd heads per dispatch, as many block steps as the budget allows.
      let acc = 0;
      let e1 = e0;
      let steps = 0;
      while (e1 < lay.entries && e1 - e0 < maxX && (e1 === e0 || acc + cost(e1) * nhd <= budget)) {
        steps = Math.max(steps, lay.steps[e1] as number);
        acc += cost(e1++) * nhd;
      }
      const per = Math.max(1, Math.floor(budget / acc));
      for (let h0 = ph; h0 < ph + nh; h0 += nhd) {
        for (let s0 = 0; s0 < steps; s0 += per) {
          const u = new Uniforms(32).u(H, t.prefix, 4 * t.count, e0, h0, t.rows, rows, nv, s0, s0 + per, ph, nh, kvoff, 0, 0, 0);
          for (const o of [g.k, g.v, g.pk, g.pv]) operandU(u, o);
          dev.dispatch(kernel, binds, u.bytes(), [e1 - e0, Math.min(nhd, ph + nh - h0)]);
          // Long launches go out one dispatch per submit, so no command buffer holds seconds of work.
          if (++dispatches > 1) dev.flush();
        }
      }
      e0 = e1;
    }
    const total = rows * nh * cfg.headDim;
    const u = new Uniforms(16).u(total, nh, ph, groups, rows, t.rows, 0).f(cfg.scale);
    operandU(u, g.q);
    operandU(u, g.pq);
    dev.dispatch(reduce, [sp, g.buffer], u.bytes(), grid(Math.ceil(total / 64), maxX));
  }
  dev.pool.release(table);
  dev.pool.release(pk);
  dev.pool.release(sp);
}
