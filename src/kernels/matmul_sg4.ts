import epilogueSrc from '../../shaders/matmul_epilogue.wgsl';
import sg4Src from '../../shaders/matmul_sg4.wgsl';
import { GpuError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { Uniforms, type View } from './view.js';

const SRC = `${sg4Src}\n${epilogueSrc}`;

/**
 * Rows per lane (TM) and 4-column groups (TN) of one subgroup's tile: 16 × 8. Measured on SwiftShader
 * (Subzero, SSE): 4×2 beats 2×2, 4×1, 8×1 (fewer FMAs per gather) and 4×4, 8×2 (spills), and 8 or 16
 * K-steps per iteration are slower than 4.
 */
const TM = 4;
const TN = 2;
export const SG4_ROWS = 4 * TM;
export const SG4_COLS = 4 * TN;

/** Whether the adapter runs the 4-lane kernel correctly: a workgroup of 4 invocations is one subgroup. */
export function sg4Capable(dev: Device): boolean {
  return dev.caps.subgroups && dev.caps.subgroupMinSize >= 4;
}

interface Flags {
  bias: boolean;
  gelu: boolean;
  pre: boolean;
}

function source(f: Flags): Record<string, string> {
  let decl = '';
  for (let i = 0; i < TM; i++) decl += `  let ar${i} = ab + min(m0 + ${4 * i}u + lane, P.M - 1u) * P.a.y;\n`;
  for (let j = 0; j < TN; j++) decl += `  let bc${j} = bb + min(n0 + ${4 * j}u + lane, P.N - 1u) * P.b.z;\n`;
  for (let i = 0; i < TM; i++) for (let n = 0; n < 4 * TN; n++) decl += `  var c${i}_${n} = 0.0;\n`;
  let body = '';
  for (let c = 0; c < 4; c++) body += `    let k${c} = min(k + ${c}u, P.K - 1u);\n    let z${c} = select(0.0, 1.0, k + ${c}u < P.K);\n`;
  // All loads of the 4 steps first, then the FMAs (measured: interleaving is no faster).
  for (let c = 0; c < 4; c++) {
    for (let i = 0; i < TM; i++) body += `    let a${i}_${c} = f32(A[ar${i} + k${c} * P.a.z]) * z${c};\n`;
    for (let j = 0; j < TN; j++) body += `    let b${j}_${c} = f32(B[bc${j} + k${c} * P.b.y]);\n`;
  }
  for (let c = 0; c < 4; c++) {
    for (let j = 0; j < TN; j++) {
      for (let q = 0; q < 4; q++) {
        body += `    { let bv = subgroupBroadcast(b${j}_${c}, ${q}u);\n`;
        for (let i = 0; i < TM; i++) body += `      c${i}_${4 * j + q} = fma(a${i}_${c}, bv, c${i}_${4 * j + q});\n`;
        body += '    }\n';
      }
    }
  }
  // The bias of the tile's columns is loaded once (clamped; columns past N are not stored).
  let store = '';
  if (f.bias) for (let n = 0; n < 4 * TN; n++) store += `  let bias${n} = f32(Bias[P.bias_off + min(n0 + ${n}u, P.N - 1u) * P.bias_s]);\n`;
  for (let i = 0; i < TM; i++) {
    store += `  { let m = m0 + ${4 * i}u + lane;\n    if (m < P.M) {\n`;
    for (let n = 0; n < 4 * TN; n++) store += `      put(bt, m, n0 + ${n}u, c${i}_${n}${f.bias ? ` + bias${n}` : ''});\n`;
    store += '    }\n  }\n';
  }
  const epilogue = `fn put(bt: u32, m: u32, n: u32, v: f32) {
  if (n >= P.N) { return; }
  let o = bt * P.o.w + m * P.o.y + n * P.o.z;
${f.pre ? '  O[P.pre_off + o] = T(v);\n' : ''}  O[P.o.x + o] = T(${f.gelu ? 'mm_gelu(v)' : 'v'});
}`;
  return { ROWS: String(SG4_ROWS), COLS: String(SG4_COLS), DECL: decl, BODY: body, STORE: store, EPILOGUE: epilogue };
}
// One generated source per epilogue; the same object each launch, so the pipeline cache key is stable.
const sources = new Map<number, Record<string, string>>();

export interface Sg4Epilogue {
  bias?: View;
  gelu?: boolean;
  preOffset?: number;
}

/**
 * Records one dispatch of the 4-lane kernel for out[b] = a[b]·b[b] (rank-3 strided views, checked by
 * the caller; batch stride 0 broadcasts). The product is computed as outᵀ = bᵀ·aᵀ when that pads the
 * 16 × 8 tiles less.
 */
export function matmulSg4(dev: Device, a: View, b: View, out: View, e: Sg4Epilogue, d: { batch: number; M: number; N: number; K: number }): void {
  const tiles = (m: number, n: number) => Math.ceil(m / SG4_ROWS) * Math.ceil(n / SG4_COLS);
  // A bias runs along N: only the unswapped orientation can apply it.
  const swap = !e.bias && tiles(d.N, d.M) < tiles(d.M, d.N);
  const [M, N] = swap ? [d.N, d.M] : [d.M, d.N];
  const [abs, ars, acs] = a.strides as [number, number, number];
  const [bbs, brs, bcs] = b.strides as [number, number, number];
  const [obs, ors, ocs] = out.strides as [number, number, number];
  // Swapped: A' = bᵀ (rows n, columns k), B' = aᵀ, O' = outᵀ.
  const [A, aOff, aRs, aCs, aBs] = swap ? [b.buffer, b.offset, bcs, brs, bbs] : [a.buffer, a.offset, ars, acs, abs];
  const [B, bOff, bRs, bCs, bBs] = swap ? [a.buffer, a.offset, acs, ars, abs] : [b.buffer, b.offset, brs, bcs, bbs];
  const [oRs, oCs] = swap ? [ocs, ors] : [ors, ocs];
  const f: Flags = { bias: !!e.bias, gelu: !!e.gelu, pre: e.preOffset !== undefined };
  const key = (f.bias ? 1 : 0) | (f.gelu ? 2 : 0) | (f.pre ? 4 : 0);
  const u = new Uniforms(28)
    .u(M, N, d.K, 0)
    .u(aOff, aRs, aCs, d.batch > 1 ? aBs : 0)
    .u(bOff, bRs, bCs, d.batch > 1 ? bBs : 0)
    .u(out.offset, oRs, oCs, obs)
    .u(e.preOffset ?? 0, e.bias?.offset ?? 0, e.bias?.strides[0] ?? 0, 0);
  let defines = sources.get(key);
  if (!defines) sources.set(key, (defines = source(f)));
  const kernel = dev.pipelines.get('matmul-sg4', SRC, { dtype: out.dtype === 'f16' ? 'f16' : 'f32', defines });
  const gx = Math.ceil(M / SG4_ROWS);
  const gy = Math.ceil(N / SG4_COLS);
  const maxW = dev.caps.maxWorkgroupsPerDim;
  if (gx > maxW || gy > maxW || d.batch > maxW) throw new GpuError(`matmul of ${d.batch}×${d.M}×${d.N} exceeds the dispatch limit of ${maxW} workgroups per dimension`, 'limit');
  // Without a bias the shader does not declare binding 4 (the auto layout drops unused bindings).
  dev.dispatch(kernel, e.bias ? [A, B, out.buffer, e.bias.buffer] : [A, B, out.buffer], u.bytes(), [gx, gy, d.batch]);
}
