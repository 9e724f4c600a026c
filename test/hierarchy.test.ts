import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { initialPrefix, regroupPrefix, splitTokens, TokenLayout, type WindowKind } from '../src/nn/hierarchy.js';
import { attention } from '../src/ops/attention.js';
import { concat } from '../src/ops/concat.js';
import { reshape } from '../src/ops/view.js';
import { repeatRows, segmentMean } from '../src/ops/segment.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { attentionRef } from './helpers/attention_ref.js';
import { checkOp } from './helpers/check.js';
import { getDevice } from './helpers/device.js';
import type { Nd } from './helpers/ref.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

// A varlen batch: a 1-scan study and a 2-scan study, 2 slices of 3 patches per scan.
const studies = [
  { scans: 1, slices: 2, patches: 3 },
  { scans: 2, slices: 2, patches: 3 },
];

describe('token layout', () => {
  it('windows are contiguous runs of the study-major patch rows, varlen across studies', () => {
    const L = new TokenLayout(studies, 2);
    expect(L.tokens).toBe(18);
    expect(L.windowLengths('slice')).toEqual([3, 3, 3, 3, 3, 3]);
    expect(L.windowLengths('scan')).toEqual([6, 6, 6]);
    expect(L.windowLengths('study')).toEqual([6, 12]);
    expect(L.children('slice', 'study')).toEqual([2, 4]);
    expect(L.children('slice', 'scan')).toEqual([2, 2, 2]);
    expect(L.children('scan', 'study')).toEqual([1, 2]);
    const w = L.windows('scan');
    expect([...w.starts]).toEqual([0, 6, 12]);
    expect(w.prefixRows).toBe(6);
    expect(() => L.children('study', 'slice')).toThrow(/not inside/);
    expect(() => new TokenLayout([{ scans: 0, slices: 1, patches: 1 }])).toThrow(/scans/);
  });
});

/** Reference prefix regrouping on [W·P, C] rows (hlip-spec §2.6), float64. */
function regroupRef(L: TokenLayout, x: Nd, from: WindowKind, to: WindowKind): Nd {
  const P = L.prefix;
  const C = x.shape[1]!;
  const rank = { slice: 0, scan: 1, study: 2 };
  const out = new Float64Array(L.prefixRows(to) * C);
  if (from === to) return { data: Float64Array.from(x.data), shape: [...x.shape] };
  if (rank[to] > rank[from]) {
    let w0 = 0;
    L.children(from, to).forEach((k, c) => {
      for (let e = 0; e < P * C; e++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += x.data[(w0 + j) * P * C + e]!;
        out[c * P * C + e] = s / k;
      }
      w0 += k;
    });
  } else {
    let f = 0;
    L.children(to, from).forEach((k, c) => {
      for (let j = 0; j < k; j++, f++) for (let e = 0; e < P * C; e++) out[f * P * C + e] = x.data[c * P * C + e]!;
    });
  }
  return { data: out, shape: [L.prefixRows(to), C] };
}

describe('prefix partition and merge', () => {
  const L = new TokenLayout(studies, 2);
  const pairs: [WindowKind, WindowKind][] = [
    ['slice', 'study'],
    ['slice', 'scan'],
    ['scan', 'study'],
    ['study', 'slice'],
    ['study', 'scan'],
    ['scan', 'slice'],
  ];
  for (const [from, to] of pairs) {
    it(`${from} → ${to} (mean when merging, copy when partitioning) with gradients`, async () => {
      await checkOp(dev, {
        inputs: [{ shape: [L.prefixRows(from), 5] }],
        run: ([p]) => regroupPrefix(L, p!, from, to),
        ref: ([p]) => regroupRef(L, p!, from, to),
      });
    });
  }

  it('initial prefix: the learned tokens copied into every window, gradients summed', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [2, 5] }],
      run: ([t]) => initialPrefix(L, 'slice', t!),
      ref: ([t]) => ({ data: Float64Array.from({ length: 6 * 10 }, (_, i) => t!.data[i % 10]!), shape: [12, 5] }),
    });
  });

  it('segment ops on rows: repeatRows and segmentMean', async () => {
    await checkOp(dev, {
      inputs: [{ shape: [3, 2, 2] }],
      run: ([x]) => repeatRows(x!, [1, 3, 2]),
      ref: ([x]) => {
        const src = [0, 1, 1, 1, 2, 2];
        return { data: Float64Array.from({ length: 24 }, (_, i) => x!.data[src[Math.floor(i / 4)]! * 4 + (i % 4)]!), shape: [6, 2, 2] };
      },
    });
    await checkOp(dev, {
      inputs: [{ shape: [6, 3] }],
      run: ([x]) => segmentMean(x!, [2, 1, 3]),
      ref: ([x]) => {
        const d = x!.data;
        const m = (r0: number, n: number, e: number) => Array.from({ length: n }, (_, k) => d[(r0 + k) * 3 + e]!).reduce((a, b) => a + b) / n;
        const rows: [number, number][] = [[0, 2], [2, 1], [3, 3]];
        return { data: Float64Array.from(rows.flatMap(([r0, n]) => [0, 1, 2].map((e) => m(r0, n, e)))), shape: [3, 3] };
      },
    });
    const x = Tensor.from(dev, [1, 2, 3], [3, 1]);
    expect(() => segmentMean(x, [1, 1])).toThrow(/needs 2 rows/);
    expect(() => repeatRows(x, [1, 0, 1])).toThrow(/at least one row/);
    x.dispose();
  });
});

/**
 * The reference forward on rows: `rows` = [W, P + L, C] with each window's prefix first. Attention
 * with q = k = v = the rows (one head), then a level change that concatenates patch tokens and
 * averages (or copies) the prefix tokens.
 */
function hierRef(L: TokenLayout, x: Nd, cls: Nd, levels: WindowKind[]): Nd {
  const C = x.shape[1]!;
  const P = L.prefix;
  let pre = regroupRef(L, { data: Float64Array.from({ length: L.prefixRows(levels[0]!) * C }, (_, i) => cls.data[i % (P * C)]!), shape: [L.prefixRows(levels[0]!), C] }, levels[0]!, levels[0]!);
  let patch = x.data;
  for (let k = 0; k < levels.length; k++) {
    const kind = levels[k]!;
    if (k > 0) pre = regroupRef(L, pre, levels[k - 1]!, kind);
    const w = L.windows(kind);
    const r = attentionRef({ q: patch, k: patch, v: patch, pq: pre.data, pk: pre.data, pv: pre.data, rows: L.tokens, heads: 1, dim: C }, { starts: w.starts, lens: w.lens, prefix: P });
    patch = r.o.slice(0, L.tokens * C);
    pre = { data: r.o.slice(L.tokens * C), shape: [w.prefixRows, C] };
  }
  const out = new Float64Array(patch.length + pre.data.length);
  out.set(patch);
  out.set(pre.data, patch.length);
  return { data: out, shape: [L.tokens + pre.shape[0]!, C] };
}

describe('hierarchical attention end to end (slice → study → scan), no patch-token copies', () => {
  it('matches the row-layout reference, with gradients for the tokens and the class/register tokens', async () => {
    const L = new TokenLayout(studies, 2);
    const levels: WindowKind[] = ['slice', 'study', 'scan'];
    const run = ([x, cls]: Tensor[]): Tensor => {
      const C = x!.shape[1]!;
      let pre = initialPrefix(L, levels[0]!, cls!);
      let patch = x!;
      for (let k = 0; k < levels.length; k++) {
        const kind = levels[k]!;
        if (k > 0) pre = regroupPrefix(L, pre, levels[k - 1]!, kind);
        const q = reshape(patch, [L.tokens, 1, C]);
        const p = reshape(pre, [L.prefixRows(kind), 1, C]);
        const o = attention({ q, k: q, v: q }, { windows: L.windows(kind), prefix: { q: p, k: p, v: p } });
        const parts = splitTokens(L, kind, o);
        patch = reshape(parts.patch, [L.tokens, C]);
        pre = reshape(parts.prefix, [L.prefixRows(kind), C]);
      }
      // The reference returns the patch rows, then the prefix rows.
      return concat([patch, pre], 0);
    };
    await scopeAsync(async () => {
      await checkOp(dev, {
        inputs: [{ shape: [L.tokens, 4] }, { shape: [2, 4] }],
        run: run as (ts: Tensor[]) => Tensor,
        ref: ([x, cls]) => hierRef(L, x!, cls!, levels),
      });
    });
  });
});
