import { isFloat, type DType } from '../dtype.js';
import { DTypeError } from '../errors.js';
import { castInto } from '../kernels/cast.js';
import { Tensor } from '../tensor/tensor.js';
import { defineOp } from './define.js';

function convert(x: Tensor, dtype: DType): Tensor {
  const out = Tensor.empty(x.device, x.shape, dtype);
  castInto(x.device, out, x);
  return out;
}

const castOp = defineOp<[Tensor], { dtype: DType }>({
  name: 'cast',
  forward: ([x], { dtype }) => convert(x, dtype),
  // The gradient is cast back; integer inputs get none.
  backward: (g, { inputs: [x] }) => [isFloat(x.dtype) ? convert(g, x.dtype) : null],
});

/**
 * Converts to another dtype as a new contiguous tensor (also when the dtype is unchanged). f32 ↔ f16
 * is differentiable; i32 → float gives values without gradient, float → i32 truncates toward zero.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if ((x.dtype === 'f16' || dtype === 'f16') && !x.device.caps.f16) {
    throw new DTypeError('cast to or from f16 needs the shader-f16 feature, which this adapter lacks');
  }
  return castOp([x], { dtype });
}
