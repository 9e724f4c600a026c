import epilogueSrc from '../../shaders/matmul_epilogue.wgsl';
import directSrc from '../../shaders/matmul_direct.wgsl';
import { GpuError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { Uniforms, type View } from './view.js';

const SRC = `${directSrc}\n${epilogueSrc}`;

/** Which axis of an operand is contiguous: 'rows' = unit column stride (row-major), 'cols' = unit row stride. */
export type Major = 'rows' | 'cols';

interface Dims {
  batch: number;
  M: number;
  N: number;
  K: number;
}

/**
 * Tile shapes (rows TM × 32·NV columns), compiled on demand. Costs below are in units of one vec4 FMA
 * per lane, measured on llvmpipe: a lane-varying vec4 load costs ~52 of them and loads dominate, so
 * bigger tiles (fewer loads per FMA) win unless padding M or N up to the tile wastes more; each
 * dispatch also pays ~0.2 ms per 32×32 of tile code (the unrolled shader), which small products feel.
 * 64-row and 64-column tiles run ~15% faster on big products but take LLVM 30–120 s to compile on a
 * cold Mesa shader cache (32×32: ~15 s), so they are not offered.
 */
const TILE_SHAPES: readonly (readonly [number, number])[] = [
  [32, 1],
  [24, 1],
  [16, 1],
  [8, 1],
];
const LOAD = 52;
const DISPATCH = 120_000;

/** Estimated cost of one product with TM × 32·NV tiles. */
function tileCost(M: number, N: number, K: number, TM: number, NV: number): number {
  const tiles = Math.ceil(M / TM) * Math.ceil(N / (32 * NV));
  const perTile = Math.ceil(K / 32) * LOAD * (TM + 32 * NV) + (K / 32) * TM * 32 * NV + LOAD * TM * NV;
  return tiles * perTile + (DISPATCH * TM * NV) / 32;
}

function bestTile(M: number, N: number, K: number): { TM: number; NV: number; cost: number } {
  let best = { TM: 32, NV: 1, cost: Infinity };
  for (const [TM, NV] of TILE_SHAPES) {
    const cost = tileCost(M, N, K, TM, NV);
    if (cost < best.cost) best = { TM, NV, cost };
  }
  return best;
}

/**
 * The layout of a [batch, R, C] operand as the direct kernel reads it (vec4s along the unit-stride
 * axis), or null: the unit-stride axis, and the offset, the other stride and the batch stride all
 * multiples of 4 (vec4 addressing).
 */
export function directMajor(v: View, batch: number): Major | null {
  const [bs, rs, cs] = v.strides as [number, number, number];
  const [, R, C] = v.shape as [number, number, number];
  // Whole vec4s only: a binding whose size is not a multiple of 16 bytes would hide its last elements.
  if (v.offset % 4 !== 0 || (batch > 1 && bs % 4 !== 0) || v.buffer.size % 16 !== 0) return null;
  // A size-1 axis has no real stride: the other axis decides.
  if ((cs === 1 || C === 1) && (rs % 4 === 0 || R === 1)) return 'rows';
  if ((rs === 1 || R === 1) && (cs % 4 === 0 || C === 1)) return 'cols';
  return null;
}

/** A view of v ([batch, R, C]) as [batch, C, R] (no copy). */
function swapAxes(v: View): View {
  const [b, r, c] = v.shape as [number, number, number];
  const [bs, rs, cs] = v.strides as [number, number, number];
  // Spelled out: v may be a Tensor, whose buffer is a getter that spreading would drop.
  return { buffer: v.buffer, dtype: v.dtype, offset: v.offset, shape: [b, c, r], strides: [bs, cs, rs] };
}

export interface DirectPlan {
  a: View;
  b: View;
  out: View;
  aMajor: Major;
  bMajor: Major;
  /** Whether the kernel computes outᵀ = bᵀ·aᵀ (then the bias runs along its rows). */
  swapped: boolean;
  M: number;
  N: number;
  /** Tile rows, and 32-column halves per tile (lane columns 4·NV). */
  TM: number;
  NV: number;
  cost: number;
}

/**
 * How the direct kernel would run a·b → out: the tile shape, and the given orientation or the transposed
 * one (outᵀ = bᵀ·aᵀ, chosen when it pads less — e.g. N = 72 with M = 4608), or null when neither
 * layout is readable.
 */
export function planDirect(a: View, b: View, out: View, d: Dims): DirectPlan | null {
  const plans: DirectPlan[] = [];
  const am = directMajor(a, d.batch);
  const bm = directMajor(b, d.batch);
  if (am && bm) plans.push({ a, b, out, aMajor: am, bMajor: bm, swapped: false, M: d.M, N: d.N, ...bestTile(d.M, d.N, d.K) });
  const a2 = swapAxes(b);
  const b2 = swapAxes(a);
  const am2 = directMajor(a2, d.batch);
  const bm2 = directMajor(b2, d.batch);
  if (am2 && bm2) plans.push({ a: a2, b: b2, out: swapAxes(out), aMajor: am2, bMajor: bm2, swapped: true, M: d.N, N: d.M, ...bestTile(d.N, d.M, d.K) });
  if (!plans.length || out.buffer.size % 16 !== 0) return null;
  return plans.reduce((p, q) => (q.cost < p.cost ? q : p));
}

const comp = ['x', 'y', 'z', 'w'];

/**
 * Straight-line code for one TM-row × 32·NV-column tile. Lane l owns columns 4l … 4l+3 of each
 * 32-column half h < NV (accumulators c{row}_{h}). BODY is one block of 32 K-steps, unrolled; loads
 * past K are masked to zero and its last three 8-step chunks are skipped (uniform branches) past K, so
 * the same code serves full blocks and K's tail. One body per pipeline: LLVM takes ~0.25 s per
 * lane-varying load it compiles (a cold Mesa shader cache), so the loads are not duplicated for a tail.
 */
function source(TM: number, NV: number, aMajor: Major, bMajor: Major): Record<string, string> {
  const halves = [...Array(NV).keys()];
  const zero = 'vec4<f32>(0.0)';
  let decl = '';
  if (aMajor === 'rows') for (let i = 0; i < TM; i++) decl += `  let ra${i} = ab + min(m0 + ${i}u, P.M - 1u) * P.a.y;\n`;
  else for (let q = 0; q < TM / 4; q++) decl += `  let ra${q} = ab + m0 / 4u + ${q}u;\n`;
  for (let i = 0; i < TM; i++) for (const h of halves) decl += `  var c${i}_${h} = vec4<f32>(0.0);\n`;
  for (const h of halves) {
    if (bMajor === 'rows') decl += `  let qb_${h} = bb + n0 / 4u + ${8 * h}u + lane;\n`;
    else for (let j = 0; j < 4; j++) decl += `  let qb${j}_${h} = bb + (n0 + ${32 * h + j}u + 4u * lane) * P.b.y;\n`;
  }
  decl += '  let lanek = vec4<u32>(4u * lane) + vec4<u32>(0u, 1u, 2u, 3u);\n';

  // B rows k … k+31 of this lane's columns: one vec4 per step and half.
  let body = '';
  for (const h of halves) {
    if (bMajor === 'rows') {
      for (let kk = 0; kk < 32; kk++) body += `    let b${kk}_${h} = select(${zero}, vec4<f32>(B[qb_${h} + (k + ${kk}u) * P.b.y]), k + ${kk}u < P.K);\n`;
    } else {
      // Column-major B: vec4s along K of the lane's 4 columns, transposed in registers.
      for (let k4 = 0; k4 < 32; k4 += 4) {
        for (let j = 0; j < 4; j++) body += `    let w${k4}_${j}_${h} = vec4<f32>(B[qb${j}_${h} + k / 4u + ${k4 / 4}u]);\n`;
        for (let c = 0; c < 4; c++) {
          const v = `vec4<f32>(${[0, 1, 2, 3].map((j) => `w${k4}_${j}_${h}.${comp[c]}`).join(', ')})`;
          body += `    let b${k4 + c}_${h} = select(${zero}, ${v}, k + ${k4 + c}u < P.K);\n`;
        }
      }
    }
  }
  const fmas = (i: number, a: string, kk: number): string => {
    let f = `      let x${i}_${kk} = vec4<f32>(${a});\n`;
    for (const h of halves) f += `      c${i}_${h} = fma(x${i}_${kk}, b${kk}_${h}, c${i}_${h});\n`;
    return f;
  };
  // Chunk c (steps 8c … 8c+7) of a row group; chunks past K are skipped.
  const chunk = (c: number, code: string): string => (c === 0 ? `    {\n${code}    }\n` : `    if (k + ${8 * c}u < P.K) {\n${code}    }\n`);
  if (aMajor === 'rows') {
    // Lane l holds A[row, k+4l … k+4l+3]; step kk is component kk%4 of lane kk/4. Rows go in groups of
    // 4/NV whose accumulators stay in registers across the 32 steps.
    const G = 4 / NV;
    for (let g0 = 0; g0 < TM; g0 += G) {
      const rows = [...Array(G).keys()].map((j) => g0 + j).filter((i) => i < TM);
      for (const i of rows) body += `    let a${i} = select(${zero}, vec4<f32>(A[ra${i} + k / 4u + lane]), lanek + vec4<u32>(k) < vec4<u32>(P.K));\n`;
      for (let c = 0; c < 4; c++) {
        let code = '';
        for (let kk = 8 * c; kk < 8 * c + 8; kk++) for (const i of rows) code += fmas(i, `subgroupBroadcast(a${i}.${comp[kk % 4]}, ${kk >> 2}u)`, kk);
        body += chunk(c, code);
      }
    }
  } else {
    // Lane l holds A[m0+4q … m0+4q+3, k+8c+l] (4 rows × 8 K-values per load); step kk is lane kk%8.
    for (let q = 0; q < TM / 4; q++) {
      for (let c = 0; c < 4; c++) {
        const kx = `k + ${8 * c}u + lane`;
        let code = `      let a${q}_${c} = select(${zero}, vec4<f32>(A[ra${q} + (${kx}) * P.a.y]), ${kx} < P.K);\n`;
        for (let kk = 8 * c; kk < 8 * c + 8; kk++) for (let r = 0; r < 4; r++) code += fmas(4 * q + r, `subgroupBroadcast(a${q}_${c}.${comp[r]}, ${kk & 7}u)`, kk);
        body += chunk(c, code);
      }
    }
  }

  let stash = '';
  for (let i = 0; i < TM; i++) for (const h of halves) stash += `  tile[${i * NV + h}] = c${i}_${h};\n`;
  return { TM: String(TM), TM8: String(TM / 8), NV: String(NV), TILES: String(TM * NV), DECL: decl, BODY: body, STASH: stash };
}

const sources = new Map<string, Record<string, string>>();

export interface DirectEpilogue {
  bias?: View;
  gelu?: boolean;
  preOffset?: number;
}

/** Records one dispatch of the direct kernel for a plan from `planDirect`. */
export function matmulDirect(dev: Device, p: DirectPlan, e: DirectEpilogue, batch: number, K: number): void {
  const { M, N, TM, NV } = p;
  const gx = Math.ceil(M / TM);
  const gy = Math.ceil(N / (32 * NV));
  const maxW = dev.caps.maxWorkgroupsPerDim;
  if (gx > maxW || gy > maxW || batch > maxW) throw new GpuError(`matmul of ${batch}×${M}×${N} exceeds the dispatch limit of ${maxW} workgroups per dimension`, 'limit');
  const key = `${TM}|${NV}|${p.aMajor}|${p.bMajor}`;
  let defines = sources.get(key);
  if (!defines) sources.set(key, (defines = source(TM, NV, p.aMajor, p.bMajor)));
  const dtype = p.out.dtype === 'f16' ? 'f16' : 'f32';
  const kernel = dev.pipelines.get('matmul-direct', SRC, { dtype, defines });
  const nonUnit = (v: View, major: Major) => (major === 'rows' ? v.strides[1] : v.strides[2]) as number;
  const bs = (v: View) => (batch > 1 ? (v.strides[0] as number) : 0);
  const [obs, ors, ocs] = p.out.strides as [number, number, number];
  // vec4 stores need the 4 elements contiguous and every offset that reaches them 4-aligned.
  const aligned = p.out.offset % 4 === 0 && (e.preOffset ?? 0) % 4 === 0 && (batch === 1 || obs % 4 === 0);
  const vecRows = aligned && ocs === 1 && ors % 4 === 0;
  const vecCols = aligned && ors === 1 && ocs % 4 === 0 && !vecRows;
  const flags = (e.bias ? 1 : 0) | (e.gelu ? 2 : 0) | (e.preOffset !== undefined ? 4 : 0) | (p.swapped ? 8 : 0) | (vecRows ? 16 : 0) | (vecCols ? 32 : 0);
  const u = new Uniforms(24)
    .u(M, N, K, flags)
    .u(p.a.offset / 4, nonUnit(p.a, p.aMajor) / 4, bs(p.a) / 4, 0)
    .u(p.b.offset / 4, nonUnit(p.b, p.bMajor) / 4, bs(p.b) / 4, 0)
    .u(p.out.offset, ors, ocs, batch > 1 ? obs : 0)
    .u(e.preOffset ?? 0, e.bias?.offset ?? 0, e.bias?.strides[0] ?? 0, 0)
    .u(TM, 0, 0, 0);
  const bias = e.bias?.buffer ?? p.b.buffer;
  dev.dispatch(kernel, [p.a.buffer, p.b.buffer, p.out.buffer, bias], u.bytes(), [gx, gy, batch]);
}
