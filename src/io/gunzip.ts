// Streaming gzip / raw-deflate decompression through DecompressionStream (browsers, Node ≥ 18), read
// only as far as the caller needs: the caller decides how many bytes it wants from what it has seen
// (e.g. a NIfTI header's dims), so a lying header or a gzip bomb costs at most what was asked for.
import { FormatError, HlipError } from '../errors.js';
import { noteAllocation } from './limits.js';

/** Deflate cannot expand data by more than ~1032:1; a header that claims more is lying. */
export const MAX_DEFLATE_RATIO = 1032;

export function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

export class Inflater {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private reader: ReadableStreamDefaultReader<Uint8Array>;
  private writeDone: Promise<void>;

  constructor(data: Uint8Array, readonly format: 'gzip' | 'deflate-raw', readonly source: string) {
    if (typeof DecompressionStream === 'undefined') throw new HlipError('format', `${format} data but this runtime has no DecompressionStream`, { source });
    const ds = new DecompressionStream(format);
    const writer = ds.writable.getWriter();
    this.writeDone = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close());
    // Errors surface through the reader; keep this promise from being reported as unhandled.
    this.writeDone.catch(() => undefined);
    this.reader = ds.readable.getReader();
  }

  /** Total decompressed bytes read so far (including those already returned). */
  get produced(): number {
    return this.buffered;
  }

  /**
   * Decompress until `n` bytes are available (or the stream ends) and return the first
   * min(n, available) bytes. Corrupt or truncated input before that point is a FormatError.
   */
  async readPrefix(n: number): Promise<Uint8Array> {
    try {
      while (this.buffered < n && !this.ended) {
        const { value, done } = await this.reader.read();
        if (done) {
          this.ended = true;
          break;
        }
        noteAllocation(value.byteLength, `${this.format} output`);
        this.chunks.push(value);
        this.buffered += value.byteLength;
      }
    } catch (e) {
      if (e instanceof HlipError) throw e;
      const what = this.format === 'gzip' ? 'gzip stream' : 'deflate stream';
      throw new FormatError(this.source, `corrupt or truncated ${what} after ${this.buffered} decompressed bytes: ${(e as Error)?.message ?? String(e)}`, e);
    }
    const take = Math.min(n, this.buffered);
    if (this.chunks.length > 1) {
      // Merge once so repeated prefixes stay cheap; memory follows the real output, not the claim.
      noteAllocation(this.buffered, `${this.format} output (merged)`);
      const all = new Uint8Array(this.buffered);
      let o = 0;
      for (const c of this.chunks) {
        all.set(c, o);
        o += c.byteLength;
      }
      this.chunks = [all];
    }
    const first = this.chunks[0] ?? new Uint8Array(0);
    return first.subarray(0, take);
  }

  /** Whether the stream has ended (everything was decompressed). */
  get done(): boolean {
    return this.ended;
  }

  /** Stop decompressing; safe to call more than once. */
  async close(): Promise<void> {
    if (!this.ended) await this.reader.cancel().catch(() => undefined);
    this.ended = true;
  }
}

/** Decompress everything, refusing to produce more than `maxBytes`. */
export async function inflateAll(data: Uint8Array, format: 'gzip' | 'deflate-raw', source: string, maxBytes: number): Promise<Uint8Array> {
  const inf = new Inflater(data, format, source);
  try {
    const out = await inf.readPrefix(maxBytes + 1);
    if (out.byteLength > maxBytes) throw new HlipError('limit', `${format} data decompresses to more than ${maxBytes} bytes`, { source });
    return out;
  } finally {
    await inf.close();
  }
}
