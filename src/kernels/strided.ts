import type { DeviceCaps } from '../gpu/device.js';
import { coalesce, grid, Uniforms, type View } from './view.js';

/**
 * Launch plans for the strided elementwise kernels (unary, binary, cast). Their shaders hold START
 * and STEP placeholders (in double braces) that get addressing code generated here per coalesced
 * rank, reading every shape/stride at a constant uniform component: a loop over a runtime rank with
 * dynamic `[d / 4][d % 4]` indexing ran 10-30× slower on llvmpipe. Each invocation also handles K
 * elements, since per-invocation overhead dominates on CPU adapters (llvmpipe, SwiftShader):
 *  - rank 1 (contiguous after coalescing): elements first + k·WG, neighbours on neighbouring lanes;
 *  - odometer (rank ≥ 2): K consecutive elements of the row-major order, the div/mods paid once and
 *    the coordinates stepped with carries;
 *  - tiled (transposing layouts): see `tiled`.
 * START declares `cnt` (elements to do), `var o` (element offsets: out, a[, b]) and `idx` (flat
 * row-major index of the current element; not maintained in tiled mode); STEP advances both. Both
 * see `wg` (linear workgroup id) and `lid`.
 */

const WG = 256;
/** Elements per invocation in each mode (measured on llvmpipe). */
const K_INTERLEAVED = 8;
const K_ODOMETER = 16;
const K_TILED = 8;
/** Tiled transposes: rows of the tile (along the transposed operand's unit-stride dim). */
const TILE_ROWS = 16;

export interface StridedScalars {
  alpha?: number;
  beta?: number;
  seed?: readonly [number, number, number];
}

export interface StridedPlan {
  /** The kernel source with START/STEP filled in (one string per layout, so the cache key is cheap). */
  source: string;
  constants: Record<string, number>;
  uniforms: Uint8Array;
  workgroups: [number, number];
}

const comp = (d: number): string => `[${d >> 2}].${'xyzw'[d & 3]}`;
function strideVec(d: number, ops: number): string {
  const s = [`P.so${comp(d)}`, `P.sa${comp(d)}`, `P.sb${comp(d)}`].slice(0, ops);
  return `vec${ops}<u32>(${s.join(', ')})`;
}
const offs = (ops: number): string => (ops === 2 ? 'P.offs.xy' : 'P.offs.xyz');

/** Adds to `o` the offsets of coordinate `rest` split over dims (outermost first); rest is consumed. */
function locateDims(dims: readonly number[], ops: number, mutableCoords: boolean): string {
  let s = '';
  for (let k = dims.length - 1; k >= 1; k--) {
    const d = dims[k] as number;
    s += `  let n${d} = P.shape${comp(d)};\n  let q${d} = rest / n${d};\n`;
    s += `  ${mutableCoords ? 'var' : 'let'} c${d} = rest - q${d} * n${d};\n  rest = q${d};\n  o += c${d} * ${strideVec(d, ops)};\n`;
  }
  if (dims.length) s += `  o += rest * ${strideVec(dims[0] as number, ops)};\n`;
  return s;
}

/** Odometer mode: the invocation does flat elements [first, first + K) in row-major order (rank 1: interleaved). */
function odometer(rank: number, ops: number): { start: string; step: string } {
  if (rank === 1) {
    // Contiguous after coalescing: interleave instead (element first + k·WG), so neighbouring
    // invocations touch neighbouring elements (coalesced on GPUs, as fast as runs on llvmpipe).
    return {
      start: `  let first = wg * WG * K + lid;\n  if (first >= P.n) { return; }\n  let cnt = min(K, (P.n - first + WG - 1u) / WG);\n  var idx = first;\n  var o = ${offs(ops)} + first * ${strideVec(0, ops)};\n  let step = WG * ${strideVec(0, ops)};`,
      step: `    o += step;\n    idx += WG;`,
    };
  }
  let start = `  let first = (wg * WG + lid) * K;\n  if (first >= P.n) { return; }\n  let cnt = min(K, P.n - first);\n`;
  start += `  var idx = first;\n  var o = ${offs(ops)};\n  var rest = first;\n`;
  start += locateDims([...Array(rank).keys()], ops, true);
  // Carries nest: when dim d wraps it resets, adds dim d-1's stride and bumps c(d-1), which may wrap
  // in turn. The outermost dim never wraps within range, so it has no coordinate.
  let step = `    idx += 1u;\n    o += ${strideVec(rank - 1, ops)};\n    c${rank - 1} += 1u;\n`;
  let close = '';
  for (let d = rank - 1; d >= 1; d--) {
    const ind = '    ' + '  '.repeat(rank - 1 - d);
    step += `${ind}if (c${d} == n${d}) {\n${ind}  c${d} = 0u;\n${ind}  o += ${strideVec(d - 1, ops)} - n${d} * ${strideVec(d, ops)};\n`;
    if (d - 1 >= 1) step += `${ind}  c${d - 1} += 1u;\n`;
    close = `${ind}}\n` + close;
  }
  return { start, step: step + close };
}

/**
 * Tiled mode for transposing layouts: a workgroup covers TR consecutive coordinates of dim p (where
 * some operand has unit stride) × QC·K of the innermost dim q, so both the unit-stride reads along p
 * and the writes along q stay within a few cache lines. P.n holds the number of tiles.
 */
function tiled(rank: number, p: number, ops: number): { start: string; step: string } {
  const q = rank - 1;
  const batch = [...Array(rank).keys()].filter((d) => d !== p && d !== q);
  let start = `  if (wg >= P.n) { return; }\n  let np = P.shape${comp(p)};\n  let nq = P.shape${comp(q)};\n`;
  start += `  let tilesQ = (nq + QC * K - 1u) / (QC * K);\n  let tilesP = (np + TR - 1u) / TR;\n`;
  start += `  let tq = wg % tilesQ;\n  let tp = (wg / tilesQ) % tilesP;\n  var rest = wg / tilesQ / tilesP;\n`;
  start += `  let cp = tp * TR + lid % TR;\n  let cq = tq * QC * K + (lid / TR) * K;\n  if (cp >= np || cq >= nq) { return; }\n`;
  start += `  let idx = 0u; // tiled launches never evaluate idx\n  let cnt = min(K, nq - cq);\n`;
  start += `  var o = ${offs(ops)} + cp * ${strideVec(p, ops)} + cq * ${strideVec(q, ops)};\n`;
  start += locateDims(batch, ops, false);
  return { start, step: `    o += ${strideVec(q, ops)};\n` };
}

// Generated sources per template and layout, built once: the pipeline cache keys on the source string.
const sourcesByTemplate = new Map<string, Map<string, string>>();
function source(template: string, key: string, make: () => { start: string; step: string }): string {
  let perTemplate = sourcesByTemplate.get(template);
  if (!perTemplate) sourcesByTemplate.set(template, (perTemplate = new Map()));
  let src = perTemplate.get(key);
  if (!src) {
    const { start, step } = make();
    src = template.split('{{START}}').join(start.trimEnd()).split('{{STEP}}').join(step.trimEnd());
    perTemplate.set(key, src);
  }
  return src;
}

/** The dim (other than the innermost) along which `v` has unit stride when its innermost stride is > 1. */
function transposedDim(strides: readonly number[]): number {
  const r = strides.length;
  const inner = strides[r - 1] as number;
  if (inner === 0 || inner === 1) return -1;
  for (let d = 0; d < r - 1; d++) if (strides[d] === 1) return d;
  return -1;
}

/**
 * Plans a launch of `template` (with `{{START}}`/`{{STEP}}`) over out's shape: coalesces the
 * layouts, picks odometer or tiled addressing, and fills elementwise_common.wgsl's uniform block.
 * `tile` allows tiled addressing (which does not maintain idx, so expressions using idx must not).
 */
export function stridedPlan(template: string, out: View, inputs: readonly View[], caps: DeviceCaps, s: StridedScalars = {}, tile = true): StridedPlan {
  const n = out.shape.reduce((a, b) => a * b, 1);
  const all = [out, ...inputs];
  let { shape, strides } = coalesce(out.shape, all.map((v) => v.strides));
  if (shape.length === 0) {
    shape = [1];
    strides = strides.map(() => [0]);
  }
  const rank = shape.length;
  const ops = inputs.length + 1;
  let p = -1;
  if (tile && rank >= 2) {
    for (const st of strides) {
      p = transposedDim(st);
      if (p >= 0) break;
    }
    // Small extents would leave most of a tile idle.
    if (p >= 0 && ((shape[p] as number) < TILE_ROWS || (shape[rank - 1] as number) < TILE_ROWS)) p = -1;
  }
  let src: string;
  let constants: Record<string, number>;
  let groups: number;
  let count = n;
  if (p >= 0) {
    const np = shape[p] as number;
    const nq = shape[rank - 1] as number;
    const K = K_TILED;
    const TR = Math.min(TILE_ROWS, caps.maxInvocations);
    // Column chunks per tile: enough for the row, at most a WG-sized tile.
    let QC = 1;
    while (QC * K < nq && QC * TR * 2 <= Math.min(WG, caps.maxInvocations)) QC *= 2;
    count = groups = Math.ceil(np / TR) * Math.ceil(nq / (QC * K)) * (n / np / nq);
    src = source(template, `t${rank}.${p}.${ops}`, () => tiled(rank, p, ops));
    constants = { WG: TR * QC, K, TR, QC };
  } else {
    const wg = Math.min(WG, caps.maxInvocations);
    const K = rank === 1 ? K_INTERLEAVED : K_ODOMETER;
    groups = Math.ceil(n / (K * wg));
    src = source(template, `o${rank}.${ops}`, () => odometer(rank, ops));
    constants = { WG: wg, K };
  }
  const u = new Uniforms(64)
    .u(count, rank)
    .f(s.alpha ?? 0, s.beta ?? 0)
    .u(out.offset, inputs[0]?.offset ?? 0, inputs[1]?.offset ?? 0, 0)
    .u(s.seed?.[0] ?? 0, s.seed?.[1] ?? 0, s.seed?.[2] ?? 0, 0)
    .arr(shape, 8, 1)
    .arr(strides[0] as number[], 8)
    .arr(strides[1] ?? [], 8)
    .arr(strides[2] ?? [], 8);
  return { source: src, constants, uniforms: u.bytes(), workgroups: grid(groups, caps.maxWorkgroupsPerDim) };
}
