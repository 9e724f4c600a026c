import { GpuError } from '../errors.js';
import type { DeviceCaps } from './device.js';

/** A compiled compute pipeline with a stable id (used in bind-group cache keys). */
export interface Kernel {
  readonly id: number;
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
}

export interface ShaderOptions {
  /** Storage type substituted for `alias T = f32;`; 'f16' also adds `enable f16;`. */
  dtype?: 'f32' | 'f16';
  /** `{{NAME}}` placeholders in the source. */
  defines?: Record<string, string | number>;
  /** Pipeline-overridable constants (`override NAME: u32 = …;`). */
  constants?: Record<string, number>;
  entryPoint?: string;
}

/** Applies the small template language the shaders in `shaders/` use. */
export function preprocess(source: string, opts: ShaderOptions, caps: DeviceCaps): string {
  const dtype = opts.dtype ?? 'f32';
  let src = source.replace(/alias T = f32;/, `alias T = ${dtype};`);
  for (const [k, v] of Object.entries(opts.defines ?? {})) src = src.split(`{{${k}}}`).join(String(v));
  const left = /\{\{(\w+)\}\}/.exec(src);
  if (left) throw new GpuError(`shader template placeholder {{${left[1]}}} has no value`, 'gpu');
  // Which extensions the final code uses, ignoring comments (a comment about f16 needs no shader-f16).
  const code = src.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const enables: string[] = [];
  if (/\bf16\b|\bvec[234]h\b|\bmat[234]x[234]h\b/.test(code)) {
    if (!caps.f16) throw new GpuError('this kernel needs shader-f16, which the adapter lacks', 'limit');
    if (!/\benable\s+f16\s*;/.test(code)) enables.push('enable f16;');
  }
  if (/\bsubgroup[A-Z]\w*\s*\(/.test(code) || /\bsubgroup_(size|invocation_id)\b/.test(code)) {
    if (!caps.subgroups) throw new GpuError('this kernel needs subgroups, which the adapter lacks', 'limit');
    if (!/\benable\s+subgroups\s*;/.test(code)) enables.push('enable subgroups;');
  }
  return enables.join('\n') + (enables.length ? '\n' : '') + src;
}

/** Compiles each distinct (source, options) once. */
export class PipelineCache {
  // Keyed by the source string itself (a constant, so its hash is cached), then by the options.
  private cache = new Map<string, Map<string, Kernel>>();
  private count = 0;
  private nextId = 1;
  constructor(private readonly device: GPUDevice, private readonly caps: DeviceCaps) {}

  get size(): number {
    return this.count;
  }

  get(label: string, source: string, opts: ShaderOptions = {}): Kernel {
    let bySource = this.cache.get(source);
    if (!bySource) this.cache.set(source, (bySource = new Map()));
    const key = `${opts.dtype ?? 'f32'}|${opts.entryPoint ?? 'main'}|${opts.defines ? JSON.stringify(opts.defines) : ''}|${opts.constants ? JSON.stringify(opts.constants) : ''}`;
    const hit = bySource.get(key);
    if (hit) return hit;
    const code = preprocess(source, opts, this.caps);
    const module = this.device.createShaderModule({ code, label });
    const compute: GPUProgrammableStage = { module, entryPoint: opts.entryPoint ?? 'main' };
    if (opts.constants && Object.keys(opts.constants).length) compute.constants = opts.constants;
    const pipeline = this.device.createComputePipeline({ layout: 'auto', compute, label });
    const kernel: Kernel = { id: this.nextId++, label, pipeline };
    bySource.set(key, kernel);
    this.count++;
    return kernel;
  }
}
