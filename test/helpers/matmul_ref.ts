// Float64 references for matmul, linear and Conv3d (stride = kernel).
import { broadcastShape, size, strides, type Nd } from './ref.js';

/** NumPy matmul of ≥2-D operands with broadcast batch axes. */
export function matmulRef(a: Nd, b: Nd): Nd {
  const M = a.shape[a.shape.length - 2]!;
  const K = a.shape[a.shape.length - 1]!;
  const N = b.shape[b.shape.length - 1]!;
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const nb = size(batch);
  const out = new Float64Array(nb * M * N);
  const off = (t: Nd, i: number) => {
    const tb = t.shape.slice(0, -2);
    const bs = strides(batch);
    const ts = strides(tb);
    const lead = batch.length - tb.length;
    let o = 0;
    let rest = i;
    for (let d = 0; d < batch.length; d++) {
      const c = Math.floor(rest / bs[d]!);
      rest -= c * bs[d]!;
      const k = d - lead;
      if (k >= 0 && tb[k] !== 1) o += c * ts[k]!;
    }
    return o * t.shape[t.shape.length - 2]! * t.shape[t.shape.length - 1]!;
  };
  for (let i = 0; i < nb; i++) {
    const oa = off(a, i);
    const ob = off(b, i);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[oa + m * K + k]! * b.data[ob + k * N + n]!;
        out[(i * M + m) * N + n] = s;
      }
    }
  }
  return { data: out, shape: [...batch, M, N] };
}

/** Last-two-axes transpose. */
export function transposeRef(t: Nd): Nd {
  const R = t.shape[t.shape.length - 2]!;
  const C = t.shape[t.shape.length - 1]!;
  const nb = size(t.shape) / (R * C);
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < nb; i++) for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[i * R * C + c * R + r] = t.data[i * R * C + r * C + c]!;
  return { data: out, shape: [...t.shape.slice(0, -2), C, R] };
}

/** Sums a broadcast result back down to `shape` (leading axes and size-1 axes). */
export function sumToRef(t: Nd, shape: number[]): Nd {
  const out = new Float64Array(size(shape));
  const os = strides(t.shape);
  const ss = strides(shape);
  const lead = t.shape.length - shape.length;
  for (let i = 0; i < t.data.length; i++) {
    let rest = i;
    let o = 0;
    for (let d = 0; d < t.shape.length; d++) {
      const c = Math.floor(rest / os[d]!);
      rest -= c * os[d]!;
      const k = d - lead;
      if (k >= 0 && shape[k] !== 1) o += c * ss[k]!;
    }
    out[o] += t.data[i]!;
  }
  return { data: out, shape: [...shape] };
}

export function erfRef(x: number): number {
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t;
    let term = t;
    for (let n = 1; n < 200; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f));
}
export const geluRef = (x: number) => 0.5 * x * (1 + erfRef(x / Math.SQRT2));
export const geluGradRef = (x: number) => 0.5 * (1 + erfRef(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);

/** torch linear: x [..., in] · w[out, in]ᵀ + b, optionally GELU. */
export function linearRef(x: Nd, w: Nd, b: Nd | null, gelu: boolean, wT = false): Nd {
  const inF = x.shape[x.shape.length - 1]!;
  const outF = wT ? w.shape[1]! : w.shape[0]!;
  const R = x.data.length / inF;
  const out = new Float64Array(R * outF);
  for (let r = 0; r < R; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b.data[o]! : 0;
      for (let i = 0; i < inF; i++) s += x.data[r * inF + i]! * (wT ? w.data[i * outF + o]! : w.data[o * inF + i]!);
      out[r * outF + o] = gelu ? geluRef(s) : s;
    }
  }
  return { data: out, shape: [...x.shape.slice(0, -1), outF] };
}

/** Conv3d with stride = kernel, output laid out as [B, tokens (d, h, w), E]. */
export function patchEmbedRef(x: Nd, w: Nd, b: Nd | null): Nd {
  const [B, C, D, H, W] = x.shape as [number, number, number, number, number];
  const [E, , pd, ph, pw] = w.shape as [number, number, number, number, number];
  const nd = Math.floor(D / pd);
  const nh = Math.floor(H / ph);
  const nw = Math.floor(W / pw);
  const T = nd * nh * nw;
  const out = new Float64Array(B * T * E);
  for (let bi = 0; bi < B; bi++)
    for (let d = 0; d < nd; d++)
      for (let h = 0; h < nh; h++)
        for (let ww = 0; ww < nw; ww++)
          for (let e = 0; e < E; e++) {
            let s = b ? b.data[e]! : 0;
            for (let c = 0; c < C; c++)
              for (let kd = 0; kd < pd; kd++)
                for (let kh = 0; kh < ph; kh++)
                  for (let kw = 0; kw < pw; kw++) {
                    const xv = x.data[((((bi * C + c) * D + d * pd + kd) * H + h * ph + kh) * W) + ww * pw + kw]!;
                    const wv = w.data[(((e * C + c) * pd + kd) * ph + kh) * pw + kw]!;
                    s += xv * wv;
                  }
            out[((bi * T) + (d * nh + h) * nw + ww) * E + e] = s;
          }
  return { data: out, shape: [B, T, E] };
}

/** patchify3d reference: [B, T, C·pd·ph·pw]. */
export function patchifyRef(x: Nd, p: [number, number, number]): Nd {
  const [B, C, D, H, W] = x.shape as [number, number, number, number, number];
  const [pd, ph, pw] = p;
  const nd = Math.floor(D / pd);
  const nh = Math.floor(H / ph);
  const nw = Math.floor(W / pw);
  const F = C * pd * ph * pw;
  const T = nd * nh * nw;
  const out = new Float64Array(B * T * F);
  for (let bi = 0; bi < B; bi++)
    for (let d = 0; d < nd; d++)
      for (let h = 0; h < nh; h++)
        for (let ww = 0; ww < nw; ww++)
          for (let c = 0; c < C; c++)
            for (let kd = 0; kd < pd; kd++)
              for (let kh = 0; kh < ph; kh++)
                for (let kw = 0; kw < pw; kw++) {
                  const t = (d * nh + h) * nw + ww;
                  const f = ((c * pd + kd) * ph + kh) * pw + kw;
                  out[(bi * T + t) * F + f] = x.data[((((bi * C + c) * D + d * pd + kd) * H + h * ph + kh) * W) + ww * pw + kw]!;
                }
  return { data: out, shape: [B, T, F] };
}
