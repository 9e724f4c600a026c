import { GpuError } from '../errors.js';

/**
 * Size-class buffer pool. Classes are powers of two split in four (≤ 25 % waste), so a training loop
 * that allocates the same shapes every step reuses the same buffers and the live byte count stays flat.
 * Lifetime is decided above (tensor storage is reference-counted); the pool only recycles.
 */
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  /** Bytes handed out and not yet released. */
  liveBytes = 0;
  peakBytes = 0;
  /** Bytes sitting in free lists. */
  pooledBytes = 0;
  liveBuffers = 0;
  allocations = 0;
  constructor(private readonly device: GPUDevice, private readonly maxBufferSize: number) {}

  static sizeClass(bytes: number): number {
    const b = Math.max(bytes, 16);
    if (b <= 256) return 256;
    const p = 2 ** Math.floor(Math.log2(b));
    const step = p / 4;
    return Math.ceil(b / step) * step;
  }

  acquire(bytes: number): GPUBuffer {
    const size = BufferPool.sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new GpuError(`buffer of ${bytes} bytes exceeds the adapter's maxBufferSize (${this.maxBufferSize})`, 'limit');
    }
    let buf = this.free.get(size)?.pop();
    if (buf) {
      this.pooledBytes -= size;
    } else {
      buf = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      this.allocations++;
    }
    this.liveBytes += size;
    this.liveBuffers++;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = buf.size;
    this.liveBytes -= size;
    this.liveBuffers--;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
    this.pooledBytes += size;
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Destroys pooled (free) buffers; live ones are untouched. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooledBytes = 0;
  }

  destroyAll(): void {
    this.trim();
  }
}
