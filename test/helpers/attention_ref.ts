// Float64 materialised reference for windowed attention: scores, softmax and their exact gradients,
// window by window (the layout rules of docs/attention.md).

export interface RefWindows {
  starts: ArrayLike<number>;
  lens: ArrayLike<number>;
  keyLens?: ArrayLike<number>;
  prefix: number;
}

export interface RefInputs {
  /** [rows, H, D] contiguous. */
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  /** [windows·P, H, D] contiguous (empty without prefix). */
  pq?: Float64Array;
  pk?: Float64Array;
  pv?: Float64Array;
  rows: number;
  heads: number;
  dim: number;
}

export interface RefOptions {
  causal?: boolean;
  scale?: number;
  /** Per patch row, 0 = not a key. */
  mask?: ArrayLike<number>;
}

export interface RefResult {
  /** [rows + windows·P, H, D]. */
  o: Float64Array;
  /** Gradients for a given dO (same layout as o). */
  grads: (dO: ArrayLike<number>) => { q: Float64Array; k: Float64Array; v: Float64Array; pq: Float64Array; pk: Float64Array; pv: Float64Array };
}

export function attentionRef(x: RefInputs, win: RefWindows, opts: RefOptions = {}): RefResult {
  const { rows, heads: H, dim: D } = x;
  const P = win.prefix;
  const W = win.starts.length;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const outRows = rows + W * P;
  const o = new Float64Array(outRows * H * D);
  // Per window: local rows → (array, row) for inputs and output row.
  type Loc = { pre: boolean; row: number; out: number };
  const locs: Loc[][] = [];
  for (let w = 0; w < W; w++) {
    const l: Loc[] = [];
    for (let i = 0; i < P; i++) l.push({ pre: true, row: w * P + i, out: rows + w * P + i });
    for (let i = 0; i < (win.lens[w] as number); i++) {
      const r = (win.starts[w] as number) + i;
      l.push({ pre: false, row: r, out: r });
    }
    locs.push(l);
  }
  const isKey = (w: number, i: number, j: number) => {
    const kl = (win.keyLens ?? win.lens)[w] as number;
    if (j >= P + kl) return false;
    if (opts.causal && j > i) return false;
    const loc = locs[w]![j]!;
    if (!loc.pre && opts.mask && opts.mask[loc.row] === 0) return false;
    return true;
  };
  const get = (arr: 'q' | 'k' | 'v', loc: Loc, h: number, d: number) => {
    const src = loc.pre ? (arr === 'q' ? x.pq : arr === 'k' ? x.pk : x.pv) : x[arr];
    return src![(loc.row * H + h) * D + d]!;
  };
  // Probabilities per window and head, kept for the gradients.
  const probs: Float64Array[][] = [];
  for (let w = 0; w < W; w++) {
    const L = locs[w]!;
    const n = L.length;
    const ph: Float64Array[] = [];
    for (let h = 0; h < H; h++) {
      const p = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          if (!isKey(w, i, j)) continue;
          let s = 0;
          for (let d = 0; d < D; d++) s += get('q', L[i]!, h, d) * get('k', L[j]!, h, d);
          p[i * n + j] = s * scale;
          m = Math.max(m, s * scale);
        }
        let sum = 0;
        for (let j = 0; j < n; j++) {
          if (!isKey(w, i, j)) continue;
          const e = Math.exp(p[i * n + j]! - m);
          p[i * n + j] = e;
          sum += e;
        }
        for (let j = 0; j < n; j++) p[i * n + j] = isKey(w, i, j) ? p[i * n + j]! / sum : 0;
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < n; j++) if (p[i * n + j]) acc += p[i * n + j]! * get('v', L[j]!, h, d);
          o[(L[i]!.out * H + h) * D + d] = acc;
        }
      }
      ph.push(p);
    }
    probs.push(ph);
  }
  const grads = (dO: ArrayLike<number>) => {
    const g = {
      q: new Float64Array(rows * H * D),
      k: new Float64Array(rows * H * D),
      v: new Float64Array(rows * H * D),
      pq: new Float64Array(W * P * H * D),
      pk: new Float64Array(W * P * H * D),
      pv: new Float64Array(W * P * H * D),
    };
    const add = (arr: 'q' | 'k' | 'v', loc: Loc, h: number, d: number, val: number) => {
      const t = loc.pre ? g[`p${arr}`] : g[arr];
      t[(loc.row * H + h) * D + d] += val;
    };
    for (let w = 0; w < W; w++) {
      const L = locs[w]!;
      const n = L.length;
      for (let h = 0; h < H; h++) {
        const p = probs[w]![h]!;
        const go = (i: number, d: number) => dO[(L[i]!.out * H + h) * D + d]!;
        for (let i = 0; i < n; i++) {
          const dp = new Float64Array(n);
          let dsum = 0;
          for (let j = 0; j < n; j++) {
            if (!p[i * n + j]) continue;
            let s = 0;
            for (let d = 0; d < D; d++) s += go(i, d) * get('v', L[j]!, h, d);
            dp[j] = s;
            dsum += s * p[i * n + j]!;
          }
          for (let j = 0; j < n; j++) {
            const pij = p[i * n + j]!;
            if (!pij) continue;
            const ds = pij * (dp[j]! - dsum) * scale;
            for (let d = 0; d < D; d++) {
              add('v', L[j]!, h, d, pij * go(i, d));
              add('q', L[i]!, h, d, ds * get('k', L[j]!, h, d));
              add('k', L[j]!, h, d, ds * get('q', L[i]!, h, d));
            }
          }
        }
      }
    }
    return g;
  };
  return { o, grads };
}
