// Gradient checkpointing (torch.utils.checkpoint, non-reentrant semantics): the forward of a segment
// runs without a tape and keeps only its inputs; backward re-runs it with the tape on and
// back-propagates through the fresh graph, trading one extra forward for the segment's activations.
import { isFloat } from '../dtype.js';
import { HlipError } from '../errors.js';
import { autocastDtype, withAutocast } from './autocast.js';
import { enableGrad, gradEnabled, noGrad, scope, withoutScope } from './scope.js';
import { record, type Tensor } from './tensor.js';

/** What a checkpointed function may draw from: the same values in its forward and its re-run. */
export interface CheckpointContext {
  /** Uniform [0, 1) draws: `opts.random` in the forward, the recorded values when re-run. */
  readonly random: () => number;
}

export interface CheckpointOptions {
  /** Host randomness the segment draws (drop path, …); default Math.random. Replayed exactly on re-run. */
  random?: () => number;
  /**
   * The trainable tensors the segment closes over (a block's parameters). They receive their gradients
   * either way (the re-run's backward reaches them as leaves); the list only matters when no input
   * needs a gradient: then the segment is recorded if one of these does. Without it, such a call runs
   * uncheckpointed (correct, no memory saved).
   */
  params?: readonly Tensor[];
}

export type CheckpointFn<I extends readonly Tensor[]> = (inputs: I, ctx: CheckpointContext) => Tensor;

/**
 * Runs `fn(inputs)` keeping only `inputs` for backward. During backward, fn runs again on detached
 * copies of the inputs with the tape on and the forward's autocast state and random draws, and its
 * graph is back-propagated at once: the inputs' gradients go to the outer graph, the parameters fn
 * uses accumulate theirs in `.grad` exactly as an uncheckpointed call would. Device-side randomness
 * (dropout) must come from seeds fn computes from its closure or `ctx.random`, so the re-run draws the
 * same. Every tensor fn needs must be an input or outlive the backward (parameters do; a temporary the
 * caller disposes after the forward must be passed in `inputs`). Under noGrad, fn simply runs.
 */
export function checkpoint<I extends readonly Tensor[]>(fn: CheckpointFn<I>, inputs: I, opts: CheckpointOptions = {}): Tensor {
  const source = opts.random ?? Math.random;
  if (!gradEnabled()) return fn(inputs, { random: source });
  const params = (opts.params ?? []).filter((p) => p.requiresGrad);
  if (!inputs.some((t) => t.requiresGrad) && !params.length) return fn(inputs, { random: source });
  for (const t of inputs) t.assertAlive();
  const draws: number[] = [];
  const amp = autocastDtype();
  const y = noGrad(() =>
    scope(() =>
      fn(inputs, {
        random: () => {
          const v = source();
          draws.push(v);
          return v;
        },
      }),
    ),
  );
  // A handle without any tape node (fn may have passed an input through), so the new node is its only one.
  const out = y.detach();
  y.dispose();
  const n = inputs.length;
  return record('checkpoint', [...inputs, ...params], out, (g, saved) => {
    const xs = saved.slice(0, n).map((t) =>
      withoutScope(() => {
        const d = t.detach();
        d.requiresGrad = t.requiresGrad && isFloat(t.dtype);
        return d;
      }),
    );
    let i = 0;
    const replay = () => {
      if (i >= draws.length) throw new HlipError('autograd', `checkpoint: the re-run drew more than the forward's ${draws.length} random numbers (fn must be deterministic given its inputs and ctx.random)`);
      return draws[i++] as number;
    };
    try {
      scope(() =>
        enableGrad(() => {
          const z = withAutocast(amp, () => fn(xs as unknown as I, { random: replay }));
          if (z.requiresGrad) withAutocast(null, () => z.backward(g));
        }),
      );
      return [
        ...xs.map((x) => {
          const gx = x.grad;
          x.grad = null;
          return gx;
        }),
        ...params.map(() => null),
      ];
    } finally {
      for (const x of xs) x.dispose();
    }
  });
}
