import source from '../../shaders/grad_norm_amp.wgsl';
import type { Device } from '../gpu/device.js';
import { Uniforms, type View } from './view.js';

/** GradScaler hyper-parameters the update kernel needs (torch names). */
export interface ScalerHyper {
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
}

/**
 * From the sum-of-squares partials (grad_sumsq) of loss-scaled gradients: out[o … o + 4) = [norm of the
 * unscaled gradients, gradient coefficient (1/scale × clip coefficient, 0 on inf/NaN), skip flag, scale
 * used], and the scaler state [scale, growth tracker, skip flag] updated in place for the next step.
 */
export function finishScaledNorm(dev: Device, partial: View, count: number, out: View, state: View, maxNorm: number | null, h: ScalerHyper): void {
  const WG = Math.min(256, dev.caps.maxInvocations);
  const u = new Uniforms(8).u(count, maxNorm === null ? 0 : 1).f(maxNorm ?? 0).u(partial.offset, out.offset, h.growthInterval).f(h.growthFactor, h.backoffFactor);
  const k = dev.pipelines.get('grad-norm-amp', source, { constants: { WG } });
  dev.dispatch(k, [partial.buffer, out.buffer, state.buffer], u.bytes(), [1]);
}
