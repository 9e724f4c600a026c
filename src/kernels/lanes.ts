import type { Device } from '../gpu/device.js';

/**
 * Subgroups of exactly 4 invocations: the 128-bit SIMD lanes of a CPU implementation of WebGPU
 * (SwiftShader, Chromium's software adapter; GPUs have wider or varying subgroups). There a load whose
 * address differs per lane is a gather of tens of instructions, a barrier switches between coroutines
 * (one per subgroup of the workgroup), and both sides of a branch run, so several kernels pick a
 * variant for it (matmul_sg4.ts, attention.ts, grad-norm.ts, reduce.ts).
 */
export function fourLaneSimd(dev: Device): boolean {
  return dev.caps.subgroups && dev.caps.subgroupMinSize === 4 && dev.caps.subgroupMaxSize === 4;
}
