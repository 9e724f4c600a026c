import { installAutogradHelpers, type Tensor } from '../tensor/tensor.js';
import { keep, noGrad } from '../tensor/scope.js';
import { add } from './elementwise.js';
import { ones } from './creation.js';
import { copyContiguous } from './view.js';

// The tape (tensor layer) needs a few ops; it sits below this layer, so they are handed down here.
installAutogradHelpers({
  accumulate: (prev: Tensor, g: Tensor) => {
    const s = add(prev, g);
    prev.dispose();
    g.dispose();
    return s;
  },
  onesLike: (t: Tensor) => ones(t.device, t.shape, t.dtype),
  noGrad,
  keep,
  copy: copyContiguous,
});

export * from './creation.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './view.js';
export { defineOp, noGradient, type OpRule, type Op, type GradsOf } from './define.js';
export * from './gather.js';
export * from './softmax.js';
export * from './layernorm.js';
export * from './loss.js';
export * from './normalize.js';
export * from './concat.js';
export * from './dropout.js';
export * from './cast.js';
export * from './matmul.js';
export * from './patchify.js';
export * from './attention.js';
export * from './segment.js';
export * from './autocast.js';
