// torch.nn.utils.clip_grad_norm_ (norm type 2) on the GPU: partial sums of squares per gradient, one
// fixed-order reduction to the norm and the clip coefficient, in-place scaling that reads the
// coefficient from GPU memory. No readback; the norm comes back as a tensor to read whenever.
import { HlipError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { finishNorm, scaleBy, sumOfSquares, sumsqSlots } from '../kernels/grad-norm.js';
import { copyContiguous } from '../ops/view.js';
import { keep, withoutScope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * Gives each parameter's gradient memory of its own, contiguous, so it can be scaled in place: a
 * backward rule may hand one gradient buffer to several inputs (add passes g straight through), and
 * scaling it once per owner would scale it twice.
 */
/**
 * Per-gradient partial sums of squares, each gradient in its own slot range (the final pass sums them in
 * order, so the norm does not depend on scheduling). `partial` has at least one (zeroed) slot.
 */
export function gradSumsqPartials(dev: Device, grads: readonly Tensor[]): { partial: Tensor; total: number } {
  const slots = grads.map((g) => sumsqSlots(dev, g.size));
  const total = slots.reduce((a, b) => a + b, 0);
  const partial = Tensor.empty(dev, [Math.max(1, total)], 'f32');
  if (!total) dev.clear(partial.buffer, 0, 4);
  let at = 0;
  grads.forEach((g, i) => {
    const src = g.isContiguous ? g : withoutScope(() => copyContiguous(g));
    sumOfSquares(dev, src, g.size, partial, at);
    if (src !== g) src.dispose();
    at += slots[i] as number;
  });
  return { partial, total };
}

function ownGrads(params: readonly Tensor[]): Tensor[] {
  const grads: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (!g.isContiguous || g.storage.refs > 1) {
      const c = withoutScope(() => copyContiguous(g));
      g.dispose();
      p.grad = c;
      keep(c);
      grads.push(c);
    } else grads.push(g);
  }
  return grads;
}

/**
 * Total 2-norm of the gradients of `params` (parameters without a gradient are skipped), as
 * torch.nn.utils.clip_grad_norm_: when `maxNorm` is a number every gradient is multiplied by
 * min(maxNorm / (norm + 1e-6), 1) in place. Returns the norm before clipping as a new scalar tensor
 * (the caller's; read it later or never). 2·(number of gradients) + 1 dispatches, no host sync.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number | null = null): Tensor {
  if (maxNorm !== null && !(maxNorm > 0)) throw new HlipError('config', `gradient clipping norm must be positive, got ${maxNorm}`);
  const first = params[0];
  if (!first) throw new HlipError('config', 'clipGradNorm: no parameters');
  const dev = first.device;
  const grads = maxNorm === null ? params.flatMap((p) => (p.grad ? [p.grad] : [])) : ownGrads(params);
  const out = Tensor.empty(dev, [2], 'f32');
  if (!grads.length) {
    dev.clear(out.buffer, 0, 8);
  } else {
    const { partial, total } = gradSumsqPartials(dev, grads);
    finishNorm(dev, partial, total, out, maxNorm);
    partial.dispose();
    if (maxNorm !== null) for (const g of grads) scaleBy(dev, g, g.size, out, 1);
  }
  const norm = out.view([], [], out.offset);
  out.dispose();
  return norm;
}
