import { assertFloat } from '../dtype.js';
import { DTypeError } from '../errors.js';
import { elementwise } from '../kernels/elementwise.js';
import { broadcastShapes, sameShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp, type GradsOf } from './define.js';
import { sumTo } from './reduce.js';
import { expand } from './view.js';

/** Raw `expr(a)` into a new tensor (no tape): backward rules use it for fused gradient kernels. */
export function unaryKernel(expr: string, a: Tensor, alpha = 0, beta = 0, seed?: readonly [number, number, number]): Tensor {
  assertFloat(a.dtype, expr);
  const out = Tensor.empty(a.device, a.shape, a.dtype);
  elementwise(a.device, expr, out, [a], seed ? { alpha, beta, seed } : { alpha, beta });
  return out;
}

/** Raw `expr(a, b)` with broadcasting into a new tensor (no tape). */
export function binaryKernel(expr: string, a: Tensor, b: Tensor, alpha = 0, beta = 0): Tensor {
  if (a.dtype !== b.dtype) throw new DTypeError(`${expr}: operands are ${a.dtype} and ${b.dtype} (cast one first)`);
  assertFloat(a.dtype, expr);
  const shape = broadcastShapes(a.shape, b.shape);
  const ea = sameShape(a.shape, shape) ? a : expand(a, shape);
  const eb = sameShape(b.shape, shape) ? b : expand(b, shape);
  const out = Tensor.empty(a.device, shape, a.dtype);
  elementwise(a.device, expr, out, [ea, eb], { alpha, beta });
  if (ea !== a) ea.dispose();
  if (eb !== b) eb.dispose();
  return out;
}

interface Scalars {
  alpha: number;
  beta: number;
}
type UnaryGrad = (g: Tensor, x: Tensor, y: Tensor, s: Scalars) => Tensor;

/**
 * Unary ops as data: forward expression (WGSL over a, alpha, beta) and backward, side by side.
 * Backward rules that need the output set `out: true`.
 */
const UNARY = {
  neg: { fwd: '-a', bwd: ((g) => unaryKernel('-a', g)) as UnaryGrad },
  exp: { fwd: 'exp(a)', out: true, bwd: ((g, _x, y) => binaryKernel('a * b', g, y)) as UnaryGrad },
  log: { fwd: 'log(a)', bwd: ((g, x) => binaryKernel('a / b', g, x)) as UnaryGrad },
  sqrt: { fwd: 'sqrt(a)', out: true, bwd: ((g, _x, y) => binaryKernel('0.5 * a / b', g, y)) as UnaryGrad },
  rsqrt: { fwd: 'inverseSqrt(a)', out: true, bwd: ((g, _x, y) => binaryKernel('-0.5 * a * b * b * b', g, y)) as UnaryGrad },
  tanh: { fwd: 'tanh_(a)', out: true, bwd: ((g, _x, y) => binaryKernel('a * (1.0 - b * b)', g, y)) as UnaryGrad },
  sigmoid: { fwd: 'sigmoid_(a)', out: true, bwd: ((g, _x, y) => binaryKernel('a * b * (1.0 - b)', g, y)) as UnaryGrad },
  logSigmoid: { fwd: 'log_sigmoid_(a)', bwd: ((g, x) => binaryKernel('a * sigmoid_(-b)', g, x)) as UnaryGrad },
  gelu: { fwd: 'gelu_(a)', bwd: ((g, x) => binaryKernel('a * gelu_grad_(b)', g, x)) as UnaryGrad },
  relu: { fwd: 'max(a, 0.0)', bwd: ((g, x) => binaryKernel('select(0.0, a, b > 0.0)', g, x)) as UnaryGrad },
  abs: { fwd: 'abs(a)', bwd: ((g, x) => binaryKernel('a * sign(b)', g, x)) as UnaryGrad },
  /** x^alpha for a scalar exponent (negative bases allowed for integer exponents). */
  pow: { fwd: 'pow_s(a, alpha)', bwd: ((g, x, _y, s) => binaryKernel('a * alpha * pow_s(b, alpha - 1.0)', g, x, s.alpha)) as UnaryGrad },
  scale: { fwd: 'a * alpha + beta', bwd: ((g, _x, _y, s) => unaryKernel('a * alpha', g, s.alpha)) as UnaryGrad },
  clamp: { fwd: 'clamp(a, alpha, beta)', bwd: ((g, x, _y, s) => binaryKernel('select(0.0, a, b >= alpha && b <= beta)', g, x, s.alpha, s.beta)) as UnaryGrad },
} satisfies Record<string, { fwd: string; out?: boolean; bwd: UnaryGrad }>;

export type UnaryName = keyof typeof UNARY;

/** Maps an op table to ops, keeping its keys in the type. */
function mapTable<K extends string, V, R>(table: Record<K, V>, f: (name: K, def: V) => R): Record<K, R> {
  const out = {} as Record<K, R>;
  for (const k of Object.keys(table) as K[]) out[k] = f(k, table[k]);
  return out;
}

const unaryOps = mapTable(UNARY as Record<UnaryName, { fwd: string; out?: boolean; bwd: UnaryGrad }>, (name, def) =>
  defineOp<[Tensor], Scalars>({
    name,
    saveOutput: def.out ?? false,
    forward: ([x], s) => unaryKernel(def.fwd, x, s.alpha, s.beta),
    backward: (g, { inputs: [x], output, params }) => [def.bwd(g, x, output, params)],
  }),
);

const S0: Scalars = { alpha: 0, beta: 0 };
export const neg = (x: Tensor) => unaryOps.neg([x], S0);
export const exp = (x: Tensor) => unaryOps.exp([x], S0);
export const log = (x: Tensor) => unaryOps.log([x], S0);
export const sqrt = (x: Tensor) => unaryOps.sqrt([x], S0);
export const rsqrt = (x: Tensor) => unaryOps.rsqrt([x], S0);
export const tanh = (x: Tensor) => unaryOps.tanh([x], S0);
export const sigmoid = (x: Tensor) => unaryOps.sigmoid([x], S0);
export const logSigmoid = (x: Tensor) => unaryOps.logSigmoid([x], S0);
/** Exact (erf) GELU. */
export const gelu = (x: Tensor) => unaryOps.gelu([x], S0);
export const relu = (x: Tensor) => unaryOps.relu([x], S0);
export const abs = (x: Tensor) => unaryOps.abs([x], S0);
export const pow = (x: Tensor, p: number) => unaryOps.pow([x], { alpha: p, beta: 0 });
/** x * s + shift. */
export const scale = (x: Tensor, s: number, shift = 0) => unaryOps.scale([x], { alpha: s, beta: shift });
export const clamp = (x: Tensor, lo: number, hi: number) => unaryOps.clamp([x], { alpha: lo, beta: hi });

type BinaryGrad = (g: Tensor, a: Tensor, b: Tensor) => GradsOf<[Tensor, Tensor]>;

const BINARY = {
  add: { fwd: 'a + b', bwd: ((g) => [g.retainHandle(), g.retainHandle()]) as BinaryGrad },
  sub: { fwd: 'a - b', bwd: ((g) => [g.retainHandle(), unaryKernel('-a', g)]) as BinaryGrad },
  mul: { fwd: 'a * b', bwd: ((g, a, b) => [binaryKernel('a * b', g, b), binaryKernel('a * b', g, a)]) as BinaryGrad },
  div: {
    fwd: 'a / b',
    bwd: ((g, a, b) => {
      const ga = binaryKernel('a / b', g, b);
      const t = binaryKernel('a * b', g, a);
      const gb = binaryKernel('-a / (b * b)', t, b);
      t.dispose();
      return [ga, gb];
    }) as BinaryGrad,
  },
} satisfies Record<string, { fwd: string; bwd: BinaryGrad }>;

export type BinaryName = keyof typeof BINARY;

const binaryOps = mapTable(BINARY as Record<BinaryName, { fwd: string; bwd: BinaryGrad }>, (name, def) =>
  defineOp<[Tensor, Tensor], undefined>({
    name,
    forward: ([a, b]) => binaryKernel(def.fwd, a, b),
    backward: (g, { inputs: [a, b] }) => {
      const [ga, gb] = def.bwd(g, a, b);
      // Undo broadcasting: each gradient is summed down to its input's shape.
      const ra = ga && a.requiresGrad ? sumTo(ga, a.shape) : null;
      const rb = gb && b.requiresGrad ? sumTo(gb, b.shape) : null;
      ga?.dispose();
      gb?.dispose();
      return [ra, rb];
    },
  }),
);

export const add = (a: Tensor, b: Tensor) => binaryOps.add([a, b], undefined);
export const sub = (a: Tensor, b: Tensor) => binaryOps.sub([a, b], undefined);
export const mul = (a: Tensor, b: Tensor) => binaryOps.mul([a, b], undefined);
export const div = (a: Tensor, b: Tensor) => binaryOps.div([a, b], undefined);
