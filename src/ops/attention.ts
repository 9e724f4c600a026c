import { DTypeError, ShapeError } from '../errors.js';
import {
  attentionBackward,
  attentionForward,
  savedLayout,
  WindowTable,
  type AttentionConfig,
  type AttentionOperands,
  type AttentionVariant,
  type GradTargets,
  type Operand,
} from '../kernels/attention.js';
import { elementwise } from '../kernels/elementwise.js';
import { contiguousStrides, fmt } from '../tensor/shape.js';
import { Storage, Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';
import { copyContiguous, contiguous, slice } from './view.js';

export { WindowTable, type AttentionVariant };

/**
 * Queries, keys and values of a set of rows: either the fused projection output `qkv` ([rows, 3·H·D]
 * or [rows, 3, H, D], row stride free) or three [rows, H, D] tensors (row and head strides free, d
 * contiguous). Views of a fused projection are used in place; anything else is copied once.
 */
export type QKV = { qkv: Tensor } | { q: Tensor; k: Tensor; v: Tensor };

export interface AttentionOptions {
  /** Heads; required for a fused [rows, 3·H·D] input, read from the shape otherwise. */
  heads?: number;
  /** Windows over the patch rows (default: one window of all rows, no prefix). */
  windows?: WindowTable;
  /** Prefix rows (CLS, register) of every window, [windows·P, …] window-major; required when windows.prefix > 0. */
  prefix?: QKV;
  /** Key j attends query i only when j ≤ i (window-local order, prefix rows first). */
  causal?: boolean;
  /** Score scale; default 1/√D. */
  scale?: number;
  /** i32 [rows]: 0 marks a patch row that is never a key (key padding). Prefix rows are always keys. */
  keyMask?: Tensor;
  /** Cap on work per dispatch (query rows × key rows × D × heads); long launches are split. */
  workBudget?: number;
  /** Cap on the fused backward's scratch bytes per pass of heads; more heads go in more passes. */
  scratchBytes?: number;
  /** Kernel family (default 'auto': the subgroup kernels on llvmpipe, the workgroup kernels elsewhere). */
  variant?: AttentionVariant;
}

/** How one role (q, k, v of patch or prefix rows) sits inside op input `input`. */
interface Role {
  input: number;
  /** Offset within the input's own row (elements), and head stride. */
  part: number;
  headStride: number;
}

interface Plan {
  heads: number;
  dim: number;
  roles: Role[]; // q, k, v, then pq, pk, pv when there is a prefix
  /** Index of the key mask among the op inputs, or -1. */
  mask: number;
  cfg: Omit<AttentionConfig, 'keyMask'>;
}

function operand(t: Tensor, r: Role): Operand {
  return { buffer: t.buffer, offset: t.offset + r.part, rowStride: t.strides[0] as number, headStride: r.headStride };
}

/** Gradient operand of role r: the input's gradient is contiguous, in G at `base[r.input]`. */
function gradOperand(buf: GPUBuffer, base: number, shape: readonly number[], r: Role): Operand {
  const rowStride = shape.slice(1).reduce((a, b) => a * b, 1);
  return { buffer: buf, offset: base + r.part, rowStride, headStride: r.headStride };
}

/** Packs separate prefix q/k/v (few rows) into one scratch buffer the kernels read with one binding. */
function packPrefix(ins: readonly Tensor[], roles: Role[], heads: number, dim: number): { scratch: Tensor | null; ops: Operand[] } {
  const pr = roles.slice(3);
  const ts = pr.map((r) => ins[r.input] as Tensor);
  const first = ts[0] as Tensor;
  if (ts.every((t) => t.buffer === first.buffer)) return { scratch: null, ops: pr.map((r, i) => operand(ts[i] as Tensor, r)) };
  const rows = first.shape[0] as number;
  const hd = heads * dim;
  const scratch = Tensor.empty(first.device, [rows, 3, heads, dim], first.dtype);
  ts.forEach((t, i) => {
    const r = pr[i] as Role;
    const src = { buffer: t.buffer, shape: [rows, heads, dim], strides: [t.strides[0] as number, r.headStride, 1], offset: t.offset + r.part, dtype: t.dtype };
    elementwise(first.device, 'a', { buffer: scratch.buffer, shape: [rows, heads, dim], strides: [3 * hd, dim, 1], offset: i * hd, dtype: t.dtype }, [src]);
  });
  return { scratch, ops: [0, 1, 2].map((i) => ({ buffer: scratch.buffer, offset: i * hd, rowStride: 3 * hd, headStride: dim })) };
}

function operands(ins: readonly Tensor[], plan: Plan): { x: AttentionOperands; scratch: Tensor | null } {
  const [q, k, v] = plan.roles.slice(0, 3).map((r) => operand(ins[r.input] as Tensor, r)) as [Operand, Operand, Operand];
  if (plan.roles.length === 3) return { x: { q, k, v }, scratch: null };
  const { scratch, ops } = packPrefix(ins, plan.roles, plan.heads, plan.dim);
  return { x: { q, k, v, pq: ops[0], pk: ops[1], pv: ops[2] }, scratch };
}

function config(ins: readonly Tensor[], plan: Plan): AttentionConfig {
  return { ...plan.cfg, keyMask: plan.mask >= 0 ? (ins[plan.mask] as Tensor).buffer : null };
}

const attentionOp = defineOp<Tensor[], Plan>({
  name: 'attention',
  saveOutput: true,
  forward: (ins, plan) => {
    const first = ins[0] as Tensor;
    const dev = first.device;
    const rows = plan.cfg.table.outRows;
    const lay = savedLayout(rows, plan.heads, plan.dim, plan.cfg.dtype);
    // The log-sum-exp rides in the output's own storage, so it lives exactly as long as the output.
    const out = new Tensor(new Storage(dev, dev.pool.acquire(lay.total), lay.total), [rows, plan.heads, plan.dim], plan.cfg.dtype);
    const { x, scratch } = operands(ins, plan);
    attentionForward(dev, config(ins, plan), x, { buffer: out.buffer, ...lay });
    scratch?.dispose();
    return out;
  },
  backward: (g0, { inputs: ins, output, params: plan }) => {
    const dev = output.device;
    const g = g0.strides[2] === 1 ? g0 : copyContiguous(g0);
    const lay = savedLayout(plan.cfg.table.outRows, plan.heads, plan.dim, plan.cfg.dtype);
    // Every float input's gradient is a contiguous region of one buffer G.
    const grads = ins.map((t, i) => (i === plan.mask ? 0 : t.size));
    const base: number[] = [];
    let total = 0;
    for (const n of grads) {
      base.push(total);
      total += n;
    }
    const G = Tensor.empty(dev, [total], plan.cfg.dtype);
    const gops = plan.roles.map((r) => gradOperand(G.buffer, base[r.input] as number, (ins[r.input] as Tensor).shape, r));
    const targets: GradTargets = { buffer: G.buffer, q: gops[0] as Operand, k: gops[1] as Operand, v: gops[2] as Operand };
    if (gops.length > 3) Object.assign(targets, { pq: gops[3], pk: gops[4], pv: gops[5] });
    const { x, scratch } = operands(ins, plan);
    const go: Operand = { buffer: g.buffer, offset: g.offset, rowStride: g.strides[0] as number, headStride: g.strides[1] as number };
    attentionBackward(dev, config(ins, plan), x, { buffer: output.buffer, ...lay }, go, targets);
    scratch?.dispose();
    if (g !== g0) g.dispose();
    const out = ins.map((t, i) => (i === plan.mask || !t.requiresGrad ? null : G.view(t.shape, contiguousStrides(t.shape), base[i] as number)));
    G.dispose();
    return out;
  },
});

interface Prepared {
  inputs: Tensor[];
  roles: Role[];
  rows: number;
  heads: number;
  dim: number;
  owned: Tensor[];
}

/** Resolves a QKV argument into op inputs and roles, copying only layouts the kernels cannot address. */
function prepare(x: QKV, heads: number | undefined, firstInput: number, what: string): Prepared {
  const owned: Tensor[] = [];
  const usable = (t: Tensor, inner: readonly number[]) => inner.every((s, i) => t.strides[i + 1] === s);
  if ('qkv' in x) {
    let t = x.qkv;
    let h: number;
    let d: number;
    if (t.ndim === 4) {
      if (t.shape[1] !== 3) throw new ShapeError(`${what}: fused qkv of shape ${fmt(t.shape)} needs [rows, 3, heads, dim]`);
      h = t.shape[2] as number;
      d = t.shape[3] as number;
      if (!usable(t, [h * d, d, 1])) t = contiguous(t);
    } else if (t.ndim === 2) {
      if (!heads) throw new ShapeError(`${what}: a fused [rows, 3·heads·dim] qkv needs opts.heads`);
      const w = t.shape[1] as number;
      if (w % (3 * heads) !== 0) throw new ShapeError(`${what}: qkv width ${w} is not 3 × ${heads} heads × dim`);
      h = heads;
      d = w / (3 * heads);
      if (!usable(t, [1])) t = contiguous(t);
    } else throw new ShapeError(`${what}: fused qkv must be [rows, 3·H·D] or [rows, 3, H, D], got ${fmt(t.shape)}`);
    if (t !== x.qkv) owned.push(t);
    const hd = h * d;
    const roles = [0, 1, 2].map((p) => ({ input: firstInput, part: p * hd, headStride: d }));
    return { inputs: [t], roles, rows: t.shape[0] as number, heads: h, dim: d, owned };
  }
  const ts = [x.q, x.k, x.v].map((t0, i) => {
    if (t0.ndim !== 3) throw new ShapeError(`${what}: ${'qkv'[i]} must be [rows, heads, dim], got ${fmt(t0.shape)}`);
    if (t0.strides[2] === 1) return t0;
    const c = contiguous(t0);
    owned.push(c);
    return c;
  });
  const s0 = (ts[0] as Tensor).shape;
  for (const t of ts) if (t.shape.join() !== s0.join()) throw new ShapeError(`${what}: q, k, v shapes differ (${fmt(t.shape)} vs ${fmt(s0)})`);
  const roles = ts.map((t, i) => ({ input: firstInput + i, part: 0, headStride: t.strides[1] as number }));
  return { inputs: ts, roles, rows: s0[0] as number, heads: s0[1] as number, dim: s0[2] as number, owned };
}

/**
 * Multi-head attention within windows (flash style: online softmax, nothing N×N in memory; see
 * docs/attention.md). Returns [patch rows + windows·P, heads, dim]: the patch rows' outputs in row
 * order, then the prefix rows window by window (split with `splitRows`). Differentiable in q, k, v
 * and the prefix q, k, v.
 */
export function attention(x: QKV, opts: AttentionOptions = {}): Tensor {
  const patch = prepare(x, opts.heads, 0, 'attention');
  const windows = opts.windows ?? WindowTable.uniform(1, patch.rows);
  const owned = [...patch.owned];
  try {
    if (windows.rows !== patch.rows) throw new ShapeError(`attention: windows cover ${windows.rows} rows, q has ${patch.rows}`);
    const inputs = [...patch.inputs];
    const roles = [...patch.roles];
    if (windows.prefix > 0) {
      if (!opts.prefix) throw new ShapeError(`attention: windows have ${windows.prefix} prefix rows; pass opts.prefix`);
      const pre = prepare(opts.prefix, patch.heads, inputs.length, 'attention prefix');
      owned.push(...pre.owned);
      if (pre.rows !== windows.prefixRows) throw new ShapeError(`attention: prefix has ${pre.rows} rows, windows need ${windows.count} × ${windows.prefix}`);
      if (pre.heads !== patch.heads || pre.dim !== patch.dim) throw new ShapeError('attention: prefix heads/dim differ from the patch rows');
      inputs.push(...pre.inputs);
      roles.push(...pre.roles);
    } else if (opts.prefix) throw new ShapeError('attention: prefix given but the windows have no prefix rows');
    const dtype = (inputs[0] as Tensor).dtype;
    if (dtype === 'i32') throw new DTypeError('attention needs floating q, k, v');
    for (const t of inputs) if (t.dtype !== dtype) throw new DTypeError(`attention: mixed dtypes ${dtype} and ${t.dtype}`);
    let mask = -1;
    if (opts.keyMask) {
      const m = opts.keyMask;
      if (m.dtype !== 'i32' || m.size !== patch.rows || !m.isContiguous || m.offset !== 0) throw new ShapeError(`attention: keyMask must be a contiguous i32 [${patch.rows}] tensor`);
      mask = inputs.length;
      inputs.push(m);
    }
    const plan: Plan = {
      heads: patch.heads,
      dim: patch.dim,
      roles,
      mask,
      cfg: {
        heads: patch.heads,
        headDim: patch.dim,
        dtype,
        scale: opts.scale ?? 1 / Math.sqrt(patch.dim),
        causal: opts.causal ?? false,
        table: windows,
        ...(opts.workBudget ? { workBudget: opts.workBudget } : {}),
        ...(opts.scratchBytes ? { scratchBytes: opts.scratchBytes } : {}),
        ...(opts.variant ? { variant: opts.variant } : {}),
      },
    };
    return attentionOp(inputs, plan);
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** A window table's output as [patch rows, prefix rows] views (differentiable). */
export function outputParts(o: Tensor, windows: WindowTable): { patch: Tensor; prefix: Tensor } {
  if (o.shape[0] !== windows.outRows) throw new ShapeError(`outputParts: ${fmt(o.shape)} does not have ${windows.outRows} rows`);
  return { patch: slice(o, 0, 0, windows.rows), prefix: slice(o, 0, windows.rows, windows.outRows) };
}
