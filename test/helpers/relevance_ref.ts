// Float64 CPU reference of the relevance map's closed form (hlip-spec §7.2, "Closed form without
// autograd"), generalised to a last block with W windows (scan or slice level): each window's class
// row goes through the block; the final partition to study averages the windows' class rows; then the
// final LayerNorm, head, L2 normalisation and the scaled logit against the prompt column c.
import { erfRef } from './matmul_ref.js';

export interface BlockWeights {
  n1w: Float64Array; n1b: Float64Array;
  qkvW: Float64Array; qkvB: Float64Array; // [3C, C], [3C]
  projW: Float64Array; projB: Float64Array; // [C, C]
  n2w: Float64Array; n2b: Float64Array;
  fc1W: Float64Array; fc1B: Float64Array; // [M, C]
  fc2W: Float64Array; fc2B: Float64Array; // [C, M]
  nfw: Float64Array; nfb: Float64Array; // final norm
  headW: Float64Array; // [E, C]
}

export interface RelevanceRefInput {
  /** Per window: its rows in the reference layout [P + L, C] (prefix rows first). */
  windows: Float64Array[];
  P: number;
  L: number;
  C: number;
  heads: number;
  eps: number;
  w: BlockWeights;
  /** exp(logit_scale). */
  s: number;
  /** Classifier columns (normalised prompt embeddings): positive, and the negative for target 'probability'. */
  cPos: Float64Array;
  cNeg: Float64Array;
  target: 'logit' | 'probability';
}

function layerNorm(x: Float64Array, g: Float64Array, b: Float64Array, eps: number): { y: Float64Array; xhat: Float64Array; sigma: number } {
  const n = x.length;
  const mu = x.reduce((a, v) => a + v, 0) / n;
  const varc = x.reduce((a, v) => a + (v - mu) ** 2, 0) / n;
  const sigma = Math.sqrt(varc + eps);
  const xhat = x.map((v) => (v - mu) / sigma);
  return { y: xhat.map((v, i) => v * g[i]! + b[i]!), xhat, sigma };
}

/** LN backward: g = γ⊙δ, δx = (g − mean(g) − x̂·mean(g⊙x̂))/σ. */
function layerNormBack(xhat: Float64Array, sigma: number, gamma: Float64Array, d: Float64Array): Float64Array {
  const n = d.length;
  const g = d.map((v, i) => v * gamma[i]!);
  const mg = g.reduce((a, v) => a + v, 0) / n;
  const mgx = g.reduce((a, v, i) => a + v * xhat[i]!, 0) / n;
  return g.map((v, i) => (v - mg - xhat[i]! * mgx) / sigma);
}

/** y = W x + b with W [out, in] row-major. */
function lin(W: Float64Array, x: Float64Array, b: Float64Array | null, out: number, off = 0): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[off + o]! : 0;
    for (let i = 0; i < n; i++) s += W[(off + o) * n + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/** Wᵀ d with W [out, in]. */
function linT(W: Float64Array, d: Float64Array, inN: number): Float64Array {
  const y = new Float64Array(inN);
  for (let o = 0; o < d.length; o++) for (let i = 0; i < inN; i++) y[i]! += W[o * inN + i]! * d[o]!;
  return y;
}

const gelu = (a: number) => 0.5 * a * (1 + erfRef(a / Math.SQRT2));
const geluGrad = (a: number) => 0.5 * (1 + erfRef(a / Math.SQRT2)) + (a * Math.exp(-0.5 * a * a)) / Math.sqrt(2 * Math.PI);

/** Relevance per patch token (window-major, [W·L]) and the logits (negative, positive). */
export function relevanceRef(r: RelevanceRefInput): { tokens: Float64Array; logits: [number, number] } {
  const { P, L, C, heads: Hn, eps, w } = r;
  const Dh = C / Hn;
  const M = w.fc1B.length;
  const K = P + L;
  const win = r.windows.map((x) => {
    const rows = Array.from({ length: K }, (_, j) => x.subarray(j * C, (j + 1) * C));
    const h = rows.map((row) => layerNorm(row, w.n1w, w.n1b, eps).y);
    const q0 = lin(w.qkvW, h[0]!, w.qkvB, C, 0);
    const k = h.map((hr) => lin(w.qkvW, hr, w.qkvB, C, C));
    const v = h.map((hr) => lin(w.qkvW, hr, w.qkvB, C, 2 * C));
    const A: Float64Array[] = [];
    const y0 = new Float64Array(C);
    for (let hh = 0; hh < Hn; hh++) {
      const sc = new Float64Array(K);
      for (let j = 0; j < K; j++) {
        let s = 0;
        for (let d = 0; d < Dh; d++) s += q0[hh * Dh + d]! * k[j]![hh * Dh + d]!;
        sc[j] = s / Math.sqrt(Dh);
      }
      const mx = Math.max(...sc);
      const e = sc.map((s) => Math.exp(s - mx));
      const z = e.reduce((a, b) => a + b, 0);
      const a = e.map((x) => x / z);
      A.push(a);
      for (let j = 0; j < K; j++) for (let d = 0; d < Dh; d++) y0[hh * Dh + d]! += a[j]! * v[j]![hh * Dh + d]!;
    }
    const z0 = lin(w.projW, y0, w.projB, C).map((val, i) => val + rows[0]![i]!);
    const ln2 = layerNorm(z0, w.n2w, w.n2b, eps);
    const a1 = lin(w.fc1W, ln2.y, w.fc1B, M);
    const mo = lin(w.fc2W, a1.map(gelu), w.fc2B, C);
    const out0 = z0.map((val, i) => val + mo[i]!);
    return { A, v, z0, ln2, a1, out0 };
  });
  const W = win.length;
  const pooled = new Float64Array(C);
  for (const o of win) for (let i = 0; i < C; i++) pooled[i]! += o.out0[i]! / W;
  const nf = layerNorm(pooled, w.nfw, w.nfb, eps);
  const E = r.cPos.length;
  const f = lin(w.headW, nf.y, null, E);
  const norm = Math.hypot(...f);
  const fh = f.map((x) => x / norm);
  const dot = (c: Float64Array) => fh.reduce((a, x, i) => a + x * c[i]!, 0);
  const lPos = r.s * dot(r.cPos);
  const lNeg = r.s * dot(r.cNeg);
  // ∂target/∂f̂·c for each column; the probability target weights the two columns by p(1 − p).
  const coef = (c: Float64Array, k: number) => {
    const fc = dot(c);
    return fh.map((x, i) => (k * r.s * (c[i]! - fc * x)) / norm);
  };
  let df = coef(r.cPos, 1);
  if (r.target === 'probability') {
    const p = 1 / (1 + Math.exp(lNeg - lPos));
    const dn = coef(r.cNeg, 1);
    df = df.map((x, i) => p * (1 - p) * (x - dn[i]!));
  }
  const dn = linT(w.headW, df, C);
  const dPooled = layerNormBack(nf.xhat, nf.sigma, w.nfw, dn);
  const tokens = new Float64Array(W * L);
  win.forEach((o, wi) => {
    const dOut = dPooled.map((x) => x / W);
    const dA1 = linT(w.fc2W, dOut, M).map((x, i) => x * geluGrad(o.a1[i]!));
    const dU = linT(w.fc1W, dA1, C);
    const dz = layerNormBack(o.ln2.xhat, o.ln2.sigma, w.n2w, dU).map((x, i) => x + dOut[i]!);
    const dy = linT(w.projW, dz, C);
    for (let j = 0; j < L; j++) {
      let s = 0;
      for (let hh = 0; hh < Hn; hh++) {
        let g = 0;
        for (let d = 0; d < Dh; d++) g += dy[hh * Dh + d]! * o.v[P + j]![hh * Dh + d]!;
        s += Math.max(0, o.A[hh]![P + j]! * g);
      }
      tokens[wi * L + j] = s / Hn;
    }
  });
  return { tokens, logits: [lNeg, lPos] };
}
