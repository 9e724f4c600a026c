export { Device, type DeviceOptions, type DeviceCaps, type AdapterSummary } from './gpu/device.js';
export { HlipError, GpuError, ShapeError, DTypeError, FormatError, type HlipErrorKind } from './errors.js';
export type { DType, FloatDType } from './dtype.js';
export { Tensor } from './tensor/tensor.js';
export { scope, scopeAsync, keep, noGrad, withoutScope } from './tensor/scope.js';
export * as ops from './ops/index.js';
export * as optim from './optim/index.js';
export { PhiloxStream, philox4x32, randUniform, randNormal } from './tensor/rng.js';
export * as io from './io/index.js';
