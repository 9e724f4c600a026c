// float64 references for ops that work on lines along one axis (softmax, layerNorm, normalize).
import { strides, type Nd } from './ref.js';

/** Applies f to every line of x along `axis` (negative allowed); f maps a line to a same-length line. */
export function alongAxis(x: Nd, axis: number, f: (line: Float64Array) => ArrayLike<number>): Nd {
  const nd = x.shape.length;
  if (nd === 0) return { data: Float64Array.from(f(Float64Array.from(x.data))), shape: [] };
  const a = axis < 0 ? axis + nd : axis;
  const n = x.shape[a]!;
  const st = strides(x.shape);
  const s = st[a]!;
  const out = new Float64Array(x.data.length);
  const line = new Float64Array(n);
  for (let base = 0; base < x.data.length; base++) {
    // Visit each line once, from the element whose coordinate along the axis is 0.
    if (Math.floor(base / s) % n !== 0) continue;
    for (let k = 0; k < n; k++) line[k] = x.data[base + k * s]!;
    const r = f(line);
    for (let k = 0; k < n; k++) out[base + k * s] = r[k]!;
  }
  return { data: out, shape: [...x.shape] };
}

export function softmaxLine(v: Float64Array): Float64Array {
  let m = -Infinity;
  for (const x of v) m = Math.max(m, x);
  let s = 0;
  for (const x of v) s += Math.exp(x - m);
  return v.map((x) => Math.exp(x - m) / s);
}

export function logSoftmaxLine(v: Float64Array): Float64Array {
  let m = -Infinity;
  for (const x of v) m = Math.max(m, x);
  let s = 0;
  for (const x of v) s += Math.exp(x - m);
  const l = Math.log(s);
  return v.map((x) => x - m - l);
}
