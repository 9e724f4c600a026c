import { DTypeError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { elementwise } from '../kernels/elementwise.js';
import { cpuPathWantsPackedA, matmul as matmulKernel, type MatmulEpilogue } from '../kernels/matmul.js';
import { coalesce, type View } from '../kernels/view.js';
import { gradEnabled } from '../tensor/scope.js';
import { broadcastShapes, contiguousStrides, fmt, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { zeros } from './creation.js';
import { defineOp, type GradsOf } from './define.js';
import { binaryKernel } from './elementwise.js';
import { sum, sumTo } from './reduce.js';
import { copyContiguous, reshape } from './view.js';

/** A view of t with its last two axes swapped (no copy, no tape). */
function mT(t: View): View {
  const n = t.shape.length;
  const shape = [...t.shape];
  const strides = [...t.strides];
  [shape[n - 2], shape[n - 1]] = [shape[n - 1] as number, shape[n - 2] as number];
  [strides[n - 2], strides[n - 1]] = [strides[n - 1] as number, strides[n - 2] as number];
  return { buffer: t.buffer, dtype: t.dtype, shape, strides, offset: t.offset };
}

/** Strides of t's leading (batch) axes broadcast to `batch` (0 on broadcast axes). */
function batchStrides(t: View, batch: readonly number[]): number[] {
  const lead = batch.length - (t.shape.length - 2);
  return batch.map((d, i) => {
    if (i < lead) return 0;
    const td = t.shape[i - lead] as number;
    return td === 1 && d !== 1 ? 0 : (t.strides[i - lead] as number);
  });
}

/**
 * The CPU kernels read operands as vec4s along a unit-stride axis; A in other layouts (no unit stride,
 * misaligned rows, e.g. odd K) is packed into a zero-padded contiguous copy first (M·K work against
 * M·N·K for the product).
 */
function packA(dev: Device, a: View, K: number): { view: View; tensor: Tensor } {
  const [batch, M] = a.shape as [number, number, number];
  const bs = a.strides[0] as number;
  const nb = bs === 0 ? 1 : batch;
  const Kp = Math.ceil(K / 32) * 32;
  const packed = Kp === K ? Tensor.empty(dev, [nb, M, Kp], a.dtype) : zeros(dev, [nb, M, Kp], a.dtype);
  const region: View = { buffer: packed.buffer, dtype: a.dtype, shape: [nb, M, K], strides: [M * Kp, Kp, 1], offset: 0 };
  elementwise(dev, 'a', region, [{ ...a, shape: [nb, M, K], strides: [bs, a.strides[1] as number, a.strides[2] as number] }]);
  return { tensor: packed, view: { buffer: packed.buffer, dtype: a.dtype, shape: [batch, M, K], strides: [bs === 0 ? 0 : M * Kp, Kp, 1], offset: 0 } };
}

/** One kernel call on rank-3 views, packing A when the CPU path wants it in another layout. */
function launch(dev: Device, a: View, b: View, out: View, epi: MatmulEpilogue): void {
  const K = a.shape[2] as number;
  if (cpuPathWantsPackedA(dev, a, b)) {
    const { view, tensor } = packA(dev, a, K);
    matmulKernel(dev, view, b, out, epi, { path: 'cpu-subgroup', aPadded: true });
    tensor.dispose();
    return;
  }
  matmulKernel(dev, a, b, out, epi);
}

/**
 * Raw batched product without the tape: a [...Sa, M, K] · b [...Sb, K, N] → new [...S, M, N] with S the
 * broadcast of the batch shapes. Batch axes that are contiguous in all three layouts are merged into
 * the kernel's one batch axis; any others are walked here. With `withPre`, the tensor's storage holds
 * a second [...S, M, N] block after the output with the pre-activation (for GELU's backward).
 */
function product(a: Tensor, b: View, epi: Omit<MatmulEpilogue, 'preOffset'> = {}, withPre = false): Tensor {
  if (a.dtype !== b.dtype) throw new DTypeError(`matmul operands are ${a.dtype} and ${b.dtype} (cast one first)`);
  if (a.dtype === 'i32') throw new DTypeError('matmul takes f32 or f16 tensors, got i32');
  const M = a.shape[a.shape.length - 2] as number;
  const K = a.shape[a.shape.length - 1] as number;
  const N = b.shape[b.shape.length - 1] as number;
  if (b.shape[b.shape.length - 2] !== K) throw new ShapeError(`matmul: ${fmt(a.shape)} · ${fmt(b.shape)}: inner dimensions ${K} and ${b.shape[b.shape.length - 2]} differ`);
  const S = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...S, M, N];
  const n = sizeOf(shape);
  let out: Tensor;
  if (withPre) {
    const both = Tensor.empty(a.device, [2 * n], a.dtype);
    out = both.view(shape, contiguousStrides(shape), 0);
    both.dispose();
  } else out = Tensor.empty(a.device, shape, a.dtype);
  if (n === 0) return out;
  const so = contiguousStrides(shape).slice(0, S.length);
  const { shape: bs, strides } = S.length ? coalesce(S, [so, batchStrides(a, S), batchStrides(b, S)]) : { shape: [], strides: [[], [], []] };
  const [sO, sA, sB] = strides as [number[], number[], number[]];
  const inner = bs.length ? (bs[bs.length - 1] as number) : 1;
  const outerShape = bs.slice(0, -1);
  const outerCount = sizeOf(outerShape);
  const last = (s: number[]) => (s.length ? (s[s.length - 1] as number) : 0);
  const ar = a.strides.slice(-2) as [number, number];
  const br = b.strides.slice(-2) as [number, number];
  for (let o = 0; o < outerCount; o++) {
    // Offsets of this outer batch index in each layout.
    let rest = o;
    let oa = a.offset;
    let ob = b.offset;
    let oo = 0;
    for (let d = outerShape.length - 1; d >= 0; d--) {
      const c = rest % (outerShape[d] as number);
      rest = Math.floor(rest / (outerShape[d] as number));
      oa += c * (sA[d] as number);
      ob += c * (sB[d] as number);
      oo += c * (sO[d] as number);
    }
    const av: View = { buffer: a.buffer, dtype: a.dtype, shape: [inner, M, K], strides: [last(sA), ...ar], offset: oa };
    const bv: View = { buffer: b.buffer, dtype: b.dtype, shape: [inner, K, N], strides: [last(sB), ...br], offset: ob };
    const ov: View = { buffer: out.buffer, dtype: out.dtype, shape: [inner, M, N], strides: [M * N, N, 1], offset: oo };
    launch(a.device, av, bv, ov, withPre ? { ...epi, preOffset: n } : epi);
  }
  return out;
}

/** The pre-activation block `product(…, withPre)` stored after the output. */
function preOf(out: Tensor): Tensor {
  return out.view(out.shape, contiguousStrides(out.shape), out.offset + out.size);
}

/** Rows of t ([..., K]) as a [R, K] view, copying only when the leading axes do not merge. */
function rows2d(t: Tensor): Tensor {
  const K = t.shape[t.shape.length - 1] as number;
  const R = t.size / Math.max(K, 1);
  if (t.ndim === 2) return t.retainHandle();
  const { shape, strides } = coalesce(t.shape.slice(0, -1), [t.strides.slice(0, -1)]);
  if (shape.length <= 1) return t.view([R, K], [(strides[0] as number[])[0] ?? K, t.strides[t.ndim - 1] as number], t.offset);
  const c = copyContiguous(t);
  const v = c.view([R, K], [K, 1], 0);
  c.dispose();
  return v;
}

const matmulOp = defineOp<[Tensor, Tensor], undefined>({
  name: 'matmul',
  forward: ([a, b]) => product(a, b),
  backward: (g, { inputs: [a, b] }) => {
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      const full = product(g, mT(b));
      ga = sumTo(full, a.shape);
      full.dispose();
    }
    if (b.requiresGrad) {
      if (b.ndim === 2 && a.ndim > 2) {
        // A shared weight: fold the batch into the contraction, dB = A_rowsᵀ · G_rows (one product, no sum).
        const ar = rows2d(a);
        const gr = rows2d(g);
        gb = product(mTensor(ar), gr);
        ar.dispose();
        gr.dispose();
      } else {
        const full = product(mTensor(a), g);
        gb = sumTo(full, b.shape);
        full.dispose();
      }
    }
    return [ga, gb];
  },
});

/** A transposed Tensor handle (no tape): for raw products inside backward rules. */
function mTensor(t: Tensor): Tensor {
  const v = mT(t);
  return t.view(v.shape, v.strides, v.offset);
}

/**
 * NumPy matmul: 1-D operands are promoted (a vector on the left is a row, on the right a column) and
 * the added axis is removed from the result; leading batch axes broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError(`matmul needs operands with at least one axis, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0] as number]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0] as number, 1]) : b;
  let y = matmulOp([a2, b2], undefined);
  if (a.ndim === 1 || b.ndim === 1) {
    const shape = y.shape.slice(0, -2);
    if (a.ndim > 1) shape.push(y.shape[y.ndim - 2] as number);
    if (b.ndim > 1) shape.push(y.shape[y.ndim - 1] as number);
    const r = reshape(y, shape);
    y.dispose();
    y = r;
  }
  if (a2 !== a) a2.dispose();
  if (b2 !== b) b2.dispose();
  return y;
}

export interface LinearOptions {
  /** Apply exact (erf) GELU to the result, fused into the matmul's epilogue. */
  activation?: 'gelu';
  /** The weight is stored [in, out] (y = x·w + b) instead of torch's [out, in] (y = x·wᵀ + b). */
  weightTransposed?: boolean;
}

interface LinearParams {
  gelu: boolean;
  wT: boolean;
  /** Whether the forward also stores the pre-activation (only when GELU's backward will need it). */
  pre: boolean;
}

/** The weight as the product's B operand ([in, out]). */
function weightB(w: Tensor, wT: boolean): View {
  return wT ? w : mT(w);
}

function linearForward(ins: readonly Tensor[], p: LinearParams): Tensor {
  const [x, w, bias] = ins as [Tensor, Tensor, Tensor | undefined];
  const inF = x.shape[x.ndim - 1] as number;
  const outF = (p.wT ? w.shape[1] : w.shape[0]) as number;
  if (w.ndim !== 2 || (p.wT ? w.shape[0] : w.shape[1]) !== inF) {
    throw new ShapeError(`linear: input ${fmt(x.shape)} does not fit weight ${fmt(w.shape)} (expected ${p.wT ? `[${inF}, out]` : `[out, ${inF}]`})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) throw new ShapeError(`linear: bias ${fmt(bias.shape)} should be [${outF}]`);
  if (bias && bias.dtype !== x.dtype) throw new DTypeError(`linear: bias is ${bias.dtype}, input ${x.dtype}`);
  const xr = rows2d(x);
  const y = product(xr, weightB(w, p.wT), { ...(bias ? { bias } : {}), gelu: p.gelu }, p.pre);
  xr.dispose();
  const shape = [...x.shape.slice(0, -1), outF];
  const out = y.view(shape, contiguousStrides(shape), 0);
  y.dispose();
  return out;
}

function linearBackward(g: Tensor, ins: readonly Tensor[], output: Tensor | null, p: LinearParams): (Tensor | null)[] {
  const [x, w, bias] = ins as [Tensor, Tensor, Tensor | undefined];
  const outF = g.shape[g.ndim - 1] as number;
  const R = g.size / Math.max(outF, 1);
  // dY/dpre = gelu'(pre): the pre-activation was stored next to the output by the forward.
  let gh: Tensor;
  if (p.gelu) {
    const pre = preOf(output as Tensor);
    gh = binaryKernel('a * gelu_grad_(b)', g, pre);
    pre.dispose();
  } else gh = g.retainHandle();
  const g2 = rows2d(gh);
  let dx: Tensor | null = null;
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (x.requiresGrad) {
    // dX = G·W (torch layout) or G·Wᵀ (transposed layout).
    const d = product(g2, p.wT ? mT(w) : w);
    dx = d.view(x.shape, contiguousStrides(x.shape), 0);
    d.dispose();
  }
  if (w.requiresGrad) {
    const xr = rows2d(x);
    // dW = Gᵀ·X ([out, in]) or Xᵀ·G ([in, out]); the contraction runs over all rows.
    dw = p.wT ? product(mTensor(xr), g2) : product(mTensor(g2), xr);
    xr.dispose();
  }
  if (bias?.requiresGrad) db = R === 0 ? zeros(g.device, [outF], g.dtype) : sum(g2, 0);
  g2.dispose();
  gh.dispose();
  return [dx, dw, ...(bias ? [db] : [])];
}

function linearRule(name: string, gelu: boolean) {
  return defineOp<Tensor[], LinearParams>({
    name,
    saveOutput: gelu,
    forward: (ins, p) => linearForward(ins, p),
    backward: (g, { inputs, output, params }) => linearBackward(g, inputs, output, params) as GradsOf<Tensor[]>,
  });
}
const linearOp = linearRule('linear', false);
const linearGeluOp = linearRule('linear_gelu', true);

/**
 * torch.nn.functional.linear: y = x·wᵀ + b with w [out, in] (or y = x·w + b with `weightTransposed`),
 * x [..., in] → [..., out]. `activation: 'gelu'` fuses exact GELU into the product's epilogue; its
 * backward needs the pre-activation, which the forward then stores beside the output (one extra
 * [..., out] block, the same memory an unfused linear + gelu keeps) rather than recomputing it with a
 * second full matmul.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null, opts: LinearOptions = {}): Tensor {
  const gelu = opts.activation === 'gelu';
  const ins = bias ? [x, w, bias] : [x, w];
  const pre = gelu && gradEnabled() && ins.some((t) => t.requiresGrad);
  return (gelu ? linearGeluOp : linearOp)(ins, { gelu, wT: opts.weightTransposed ?? false, pre });
}
