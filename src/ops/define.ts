import { HlipError } from '../errors.js';
import { autocastDtype, withAutocast } from '../tensor/autocast.js';
import { noGrad } from '../tensor/scope.js';
import { record, type Tensor } from '../tensor/tensor.js';

/** One gradient per input, in order: the tuple type makes a rule with the wrong arity a compile error. */
export type GradsOf<In extends readonly Tensor[]> = { readonly [K in keyof In]: Tensor | null };

/**
 * An op in one place: its forward (which launches kernels) and its backward rule. `backward` is a
 * required member, so declaring an op without one does not compile; an op that truly has no gradient
 * says so with `backward: noGradient`.
 */
export interface OpRule<In extends readonly Tensor[], P> {
  readonly name: string;
  /** Computes the output. Runs with the tape off. */
  forward(inputs: In, params: P): Tensor;
  /** Input gradients from the output gradient g. Runs with the tape off. */
  backward(g: Tensor, saved: { readonly inputs: In; readonly output: Tensor; readonly params: P }): GradsOf<In>;
  /** Keep the output for backward (exp, sigmoid, softmax…); otherwise `saved.output` must not be used. */
  readonly saveOutput?: boolean;
}

export type Op<In extends readonly Tensor[], P> = ((inputs: In, params: P) => Tensor) & { readonly rule: OpRule<In, P> };

/** Explicit "this op has no gradient" rule (integer outputs, comparisons). */
export function noGradient<In extends readonly Tensor[]>(_g: Tensor, saved: { readonly inputs: In }): GradsOf<In> {
  return saved.inputs.map(() => null) as unknown as GradsOf<In>;
}

/**
 * Input casts for an op under autocast (installed by src/ops/autocast.ts): the inputs to run it on
 * (new tensors where cast), or null to run it as called.
 */
export type AutocastHook = (name: string, inputs: readonly Tensor[]) => Tensor[] | null;
let autocastHook: AutocastHook | null = null;

export function installAutocastHook(h: AutocastHook): void {
  autocastHook = h;
}

export function defineOp<In extends readonly Tensor[], P = undefined>(rule: OpRule<In, P>): Op<In, P> {
  const run = (inputs: In, params: P): Tensor => {
    // An op's own forward and backward see no autocast: the policy applies once, at the op boundary.
    const amp = autocastDtype() !== null;
    const out = amp ? withAutocast(null, () => noGrad(() => rule.forward(inputs, params))) : noGrad(() => rule.forward(inputs, params));
    return record(
      rule.name,
      inputs,
      out,
      (g, ins, output) => {
        if (rule.saveOutput && !output) throw new HlipError('autograd', `${rule.name}: saved output missing`);
        return withAutocast(null, () => rule.backward(g, { inputs: ins as unknown as In, output: output as Tensor, params }));
      },
      rule.saveOutput ?? false,
    );
  };
  const op = (inputs: In, params: P): Tensor => {
    for (const t of inputs) t.assertAlive();
    const cast = autocastHook && autocastDtype() !== null ? autocastHook(rule.name, inputs) : null;
    if (!cast) return run(inputs, params);
    try {
      return run(cast as unknown as In, params);
    } finally {
      cast.forEach((t, i) => t !== inputs[i] && t.dispose());
    }
  };
  return Object.assign(op, { rule });
}
