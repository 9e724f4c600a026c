import { GpuError } from '../errors.js';
import { BufferPool } from './pool.js';
import { PipelineCache, type Kernel } from './pipeline.js';

/** What the kernels need to know about the adapter to pick variants. */
export interface DeviceCaps {
  readonly f16: boolean;
  readonly subgroups: boolean;
  /** Subgroup size range (GPUAdapterInfo.subgroupMinSize/MaxSize); 0 without the subgroups feature. */
  readonly subgroupMinSize: number;
  readonly subgroupMaxSize: number;
  readonly timestampQuery: boolean;
  readonly maxInvocations: number;
  readonly maxWorkgroupStorage: number;
  readonly maxStorageBinding: number;
  readonly maxBufferSize: number;
  readonly maxStorageBuffersPerStage: number;
  readonly maxWorkgroupsPerDim: number;
  readonly minUniformAlign: number;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
}

export interface DeviceOptions {
  /** A `GPU` object (navigator.gpu, or `create()` from the npm `webgpu` package). Default: `navigator.gpu`. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Do not request shader-f16 even when the adapter has it (tests the f32-only path). */
  disableF16?: boolean;
  disableSubgroups?: boolean;
  /** Reject a readback that has not completed after this many ms (a hung or lost device). Default 600 000. */
  readTimeoutMs?: number;
  /** Flush recorded work after this many dispatches, so no single submit runs for seconds. Default 128. */
  maxDispatchesPerSubmit?: number;
}

/** A binding: a whole buffer, or a byte range of one. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

function isRange(b: Binding): b is { buffer: GPUBuffer; offset: number; size: number } {
  return 'offset' in b && 'buffer' in b;
}

const UNIFORM_SLOT = 256;
const UNIFORM_ARENA = 64 * 1024;

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(b, id);
  }
  return id;
}

/** Locates the WebGPU entry point: the given one, or the browser's. */
function findGpu(gpu?: GPU): GPU {
  if (gpu) return gpu;
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  throw new GpuError('WebGPU is not available: no navigator.gpu (in Node pass `gpu` from the npm "webgpu" package, or use createNodeDevice())');
}

/**
 * One WebGPU device plus everything that keeps it fast: a buffer pool, a pipeline and bind-group cache,
 * a uniform arena, and a single open compute pass into which dispatches are recorded and submitted in
 * batches. Nothing is awaited except explicit readbacks, because dawn.node busy-polls a core while any
 * GPU promise is pending.
 */
const PROFILE_SLOTS = 128;

interface Profiler {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  labels: string[];
  totals: Map<string, { count: number; ms: number }>;
  pending: Promise<void>[];
}

export class Device {
  readonly gpu: GPUDevice;
  readonly caps: DeviceCaps;
  readonly adapter: AdapterSummary;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  private readonly readTimeoutMs: number;
  private readonly maxDispatches: number;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private uniformArena: GPUBuffer;
  private uniformStage: Uint8Array;
  private uniformUsed = 0;
  private bindGroups = new Map<string, GPUBindGroup>();
  private firstError: GpuError | null = null;
  private lostReason: string | null = null;
  private stagingFree = new Map<number, GPUBuffer[]>();
  /** Counters for tests and benchmarks. */
  readonly stats = { submits: 0, dispatches: 0, readbacks: 0, bindGroupHits: 0, bindGroupMisses: 0 };

  /**
   * The GPU entry point and adapter are held for the device's lifetime: dawn.node frees the native
   * instance when its JS object is collected, and later event processing then crashes the process.
   */
  private readonly keepAlive: readonly unknown[];

  private constructor(device: GPUDevice, adapter: AdapterSummary, caps: DeviceCaps, opts: DeviceOptions, keepAlive: readonly unknown[]) {
    this.keepAlive = keepAlive;
    this.gpu = device;
    this.adapter = adapter;
    this.caps = caps;
    this.readTimeoutMs = opts.readTimeoutMs ?? 600_000;
    this.maxDispatches = opts.maxDispatchesPerSubmit ?? 128;
    this.pool = new BufferPool(device, caps.maxBufferSize);
    this.pipelines = new PipelineCache(device, caps);
    this.uniformArena = device.createBuffer({ size: UNIFORM_ARENA, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.uniformStage = new Uint8Array(UNIFORM_ARENA);
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      const kind = e.constructor?.name === 'GPUOutOfMemoryError' ? 'out-of-memory' : 'gpu';
      this.firstError ??= new GpuError(`WebGPU ${kind === 'out-of-memory' ? 'out of memory' : 'error'}: ${e.message}`, kind);
    });
    void device.lost.then((info) => {
      if (info.reason === 'destroyed' && this.lostReason === 'destroyed') return;
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  static async create(opts: DeviceOptions = {}): Promise<Device> {
    const gpu = findGpu(opts.gpu);
    const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
    if (!adapter) throw new GpuError('no WebGPU adapter found (in Node on Linux a Vulkan driver such as Mesa lavapipe is needed)');
    const want: GPUFeatureName[] = [];
    const has = (f: string) => adapter.features.has(f);
    if (has('shader-f16') && !opts.disableF16) want.push('shader-f16');
    if (has('subgroups') && !opts.disableSubgroups) want.push('subgroups' as GPUFeatureName);
    if (has('timestamp-query')) want.push('timestamp-query');
    const L = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: L.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupSizeZ: L.maxComputeWorkgroupSizeZ,
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxBufferSize: L.maxBufferSize,
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupsPerDimension: L.maxComputeWorkgroupsPerDimension,
    };
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures: want, requiredLimits });
    } catch (e) {
      throw new GpuError(`requestDevice failed: ${(e as Error).message}`, 'gpu', e);
    }
    const info = adapter.info ?? ({} as GPUAdapterInfo);
    const limits: Record<string, number> = {};
    for (const k of Object.keys(requiredLimits).concat(['minUniformBufferOffsetAlignment', 'minStorageBufferOffsetAlignment', 'maxBindGroups'])) {
      limits[k] = (device.limits as unknown as Record<string, number>)[k] as number;
    }
    const summary: AdapterSummary = {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      features: [...device.features].map(String).sort(),
      limits,
    };
    const D = device.limits;
    const subgroups = device.features.has('subgroups');
    const sg = ((device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo ?? info) as { subgroupMinSize?: number; subgroupMaxSize?: number };
    const caps: DeviceCaps = {
      f16: device.features.has('shader-f16'),
      subgroups,
      subgroupMinSize: subgroups ? (sg.subgroupMinSize ?? 0) : 0,
      subgroupMaxSize: subgroups ? (sg.subgroupMaxSize ?? 0) : 0,
      timestampQuery: device.features.has('timestamp-query'),
      maxInvocations: D.maxComputeInvocationsPerWorkgroup,
      maxWorkgroupStorage: D.maxComputeWorkgroupStorageSize,
      maxStorageBinding: D.maxStorageBufferBindingSize,
      maxBufferSize: D.maxBufferSize,
      maxStorageBuffersPerStage: D.maxStorageBuffersPerShaderStage,
      maxWorkgroupsPerDim: D.maxComputeWorkgroupsPerDimension,
      minUniformAlign: D.minUniformBufferOffsetAlignment,
    };
    return new Device(device, summary, caps, opts, [gpu, adapter]);
  }

  /** Throws the first uncaptured WebGPU error or the device-lost reason, if any. */
  checkErrors(): void {
    if (this.lostReason) throw new GpuError(`WebGPU device lost (${this.lostReason})`, 'device-lost');
    if (this.firstError) {
      const e = this.firstError;
      this.firstError = null;
      throw e;
    }
  }

  get lost(): boolean {
    return this.lostReason !== null;
  }

  private openPass(): GPUComputePassEncoder {
    if (this.lostReason) this.checkErrors();
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private closePass(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return this.encoder;
  }

  private profiler: Profiler | null = null;

  /**
   * Records one dispatch. Binding 0 is the uniform block (when `uniforms` is given), the buffers follow
   * in order from binding 1 (or 0 without uniforms).
   */
  dispatch(kernel: Kernel, buffers: readonly Binding[], uniforms: ArrayBufferView | null, workgroups: readonly [number, number?, number?]): void {
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxW = this.caps.maxWorkgroupsPerDim;
    if (x > maxW || y > maxW || z > maxW) {
      throw new GpuError(`dispatch ${kernel.label}: ${x}×${y}×${z} workgroups exceeds ${maxW} per dimension`, 'limit');
    }
    let uniformOffset = -1;
    if (uniforms) {
      const bytes = uniforms.byteLength;
      if (bytes > UNIFORM_SLOT) throw new GpuError(`dispatch ${kernel.label}: uniform block of ${bytes} bytes exceeds ${UNIFORM_SLOT}`, 'limit');
      if (this.uniformUsed + UNIFORM_SLOT > UNIFORM_ARENA) this.flush();
      uniformOffset = this.uniformUsed;
      this.uniformStage.set(new Uint8Array(uniforms.buffer, uniforms.byteOffset, bytes), uniformOffset);
      this.uniformUsed += UNIFORM_SLOT;
    }
    const prof = this.profiler;
    const pass = prof ? this.profiledPass(prof, kernel.label) : this.openPass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, this.bindGroup(kernel, buffers, uniformOffset));
    pass.dispatchWorkgroups(x, y, z);
    if (prof) {
      pass.end();
      this.pass = null;
    }
    this.stats.dispatches++;
    if (++this.dispatches >= this.maxDispatches) this.flush();
  }

  private bindGroup(kernel: Kernel, buffers: readonly Binding[], uniformOffset: number): GPUBindGroup {
    let key = `${kernel.id}|${uniformOffset}`;
    for (const b of buffers) key += isRange(b) ? `|${bufferId(b.buffer)}:${b.offset}:${b.size}` : `|${bufferId(b)}`;
    const hit = this.bindGroups.get(key);
    if (hit) {
      this.stats.bindGroupHits++;
      // Refresh LRU position.
      this.bindGroups.delete(key);
      this.bindGroups.set(key, hit);
      return hit;
    }
    this.stats.bindGroupMisses++;
    const entries: GPUBindGroupEntry[] = [];
    let binding = 0;
    if (uniformOffset >= 0) entries.push({ binding: binding++, resource: { buffer: this.uniformArena, offset: uniformOffset, size: UNIFORM_SLOT } });
    for (const b of buffers) {
      entries.push({ binding: binding++, resource: isRange(b) ? { buffer: b.buffer, offset: b.offset, size: b.size } : { buffer: b } });
    }
    const group = this.gpu.createBindGroup({ layout: kernel.pipeline.getBindGroupLayout(0), entries });
    this.bindGroups.set(key, group);
    if (this.bindGroups.size > 8192) {
      const oldest = this.bindGroups.keys().next().value as string;
      this.bindGroups.delete(oldest);
    }
    return group;
  }

  /** Forget cached bind groups that name a buffer about to be destroyed. */
  forgetBindGroups(): void {
    this.bindGroups.clear();
  }

  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (size === 0) return;
    const enc = this.closePass();
    enc.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Zero-fills a byte range (a memset on the GPU timeline, far cheaper than a kernel). */
  clear(buffer: GPUBuffer, offset: number, size: number): void {
    if (size === 0) return;
    const enc = this.closePass();
    enc.clearBuffer(buffer, offset, size);
  }

  /** Uploads bytes. Recorded work is submitted first so the write cannot overtake it (queue order). */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    if (this.encoder) this.flush();
    this.gpu.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Submits everything recorded so far. Cheap when nothing is pending. */
  flush(): void {
    if (!this.encoder && this.uniformUsed === 0) return;
    if (this.uniformUsed > 0) {
      this.gpu.queue.writeBuffer(this.uniformArena, 0, this.uniformStage.buffer, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    const enc = this.closePass();
    const prof = this.profiler;
    let readback: (() => Promise<void>) | null = null;
    if (prof && prof.labels.length) {
      const n = prof.labels.length * 2;
      enc.resolveQuerySet(prof.querySet, 0, n, prof.resolve, 0);
      const staging = this.gpu.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.copyBufferToBuffer(prof.resolve, 0, staging, 0, n * 8);
      const labels = prof.labels;
      prof.labels = [];
      readback = async () => {
        await staging.mapAsync(GPUMapMode.READ);
        const t = new BigUint64Array(staging.getMappedRange().slice(0));
        staging.destroy();
        labels.forEach((l, i) => {
          const ns = Number((t[2 * i + 1] as bigint) - (t[2 * i] as bigint));
          const e = prof.totals.get(l) ?? { count: 0, ms: 0 };
          e.count++;
          e.ms += ns / 1e6;
          prof.totals.set(l, e);
        });
      };
    }
    this.gpu.queue.submit([enc.finish()]);
    // Mapping must start after the submit that writes the staging buffer.
    if (readback) prof?.pending.push(readback());
    this.encoder = null;
    this.dispatches = 0;
    this.stats.submits++;
  }

  private takeStaging(size: number): GPUBuffer {
    const cls = 1 << Math.max(8, Math.ceil(Math.log2(Math.max(size, 1))));
    const free = this.stagingFree.get(cls);
    const b = free?.pop();
    if (b) return b;
    return this.gpu.createBuffer({ size: cls, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  private giveStaging(b: GPUBuffer): void {
    let free = this.stagingFree.get(b.size);
    if (!free) this.stagingFree.set(b.size, (free = []));
    if (free.length < 4) free.push(b);
    else b.destroy();
  }

  /** Reads bytes back. The only place the library awaits the GPU. */
  async read(buffer: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    this.checkErrors();
    const aligned = Math.ceil(size / 4) * 4;
    const staging = this.takeStaging(aligned);
    this.copyBuffer(buffer, offset, staging, 0, aligned);
    this.flush();
    this.stats.readbacks++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GpuError(`readback did not complete within ${this.readTimeoutMs} ms (GPU hung or lost)`, 'device-lost')), this.readTimeoutMs);
    });
    try {
      await Promise.race([staging.mapAsync(GPUMapMode.READ, 0, aligned), timeout]);
    } catch (e) {
      this.checkErrors();
      if (e instanceof GpuError) throw e;
      throw new GpuError(`readback failed: ${(e as Error).message}`, 'gpu', e);
    } finally {
      clearTimeout(timer);
    }
    const out = staging.getMappedRange(0, aligned).slice(0, size);
    staging.unmap();
    this.giveStaging(staging);
    this.checkErrors();
    return out;
  }

  /** Waits until all submitted work has finished (for timing). */
  /**
   * Starts per-kernel GPU timing (timestamp queries; one pass per dispatch, so slower): for finding
   * where time goes, never in normal runs. Needs the timestamp-query feature.
   */
  startProfile(): void {
    if (!this.caps.timestampQuery) throw new GpuError('profiling needs the timestamp-query feature', 'limit');
    this.flush();
    const querySet = this.gpu.createQuerySet({ type: 'timestamp', count: 2 * PROFILE_SLOTS });
    const resolve = this.gpu.createBuffer({ size: 16 * PROFILE_SLOTS, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.profiler = { querySet, resolve, labels: [], totals: new Map(), pending: [] };
  }

  /** Ends profiling: per kernel label, dispatch count and summed GPU milliseconds. */
  async stopProfile(): Promise<Map<string, { count: number; ms: number }>> {
    const prof = this.profiler;
    if (!prof) throw new GpuError('stopProfile without startProfile', 'gpu');
    this.flush();
    this.profiler = null;
    await Promise.all(prof.pending);
    prof.querySet.destroy();
    prof.resolve.destroy();
    return prof.totals;
  }

  private profiledPass(prof: Profiler, label: string): GPUComputePassEncoder {
    if (prof.labels.length >= PROFILE_SLOTS) this.flush();
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    const i = prof.labels.length;
    prof.labels.push(label);
    this.pass = this.encoder.beginComputePass({ timestampWrites: { querySet: prof.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    return this.pass;
  }

  async sync(): Promise<void> {
    this.flush();
    await this.gpu.queue.onSubmittedWorkDone();
    this.checkErrors();
  }

  destroy(): void {
    this.lostReason = 'destroyed';
    this.pool.destroyAll();
    for (const list of this.stagingFree.values()) for (const b of list) b.destroy();
    this.stagingFree.clear();
    this.bindGroups.clear();
    this.uniformArena.destroy();
    this.gpu.destroy();
  }
}
