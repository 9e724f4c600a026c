import { FormatError, HlipError } from '../errors.js';
import { allocBytes, noteAllocation } from './limits.js';
import { readRange, type ByteSource } from './source.js';

/**
 * Minimal ZIP reader for PyTorch checkpoints: end-of-central-directory (and ZIP64) records, the
 * central directory, local headers; stored entries, and deflated ones where DecompressionStream
 * exists. Every size and offset is checked against the file before anything is read or allocated.
 */

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOC64 = 0x07064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;
/** Deflate cannot expand data more than ~1032:1; a larger declared size is a lie. */
const MAX_DEFLATE_RATIO = 1032;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Slicing-by-8 CRC-32 tables (8 x 256): ~4x faster than byte-at-a-time on large storages.
let crcTables: Int32Array | null = null;
function tables(): Int32Array {
  if (!crcTables) {
    const t = new Int32Array(8 * 256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c;
    }
    for (let k = 1; k < 8; k++) {
      for (let n = 0; n < 256; n++) {
        const p = t[(k - 1) * 256 + n] as number;
        t[k * 256 + n] = (p >>> 8) ^ (t[p & 0xff] as number);
      }
    }
    crcTables = t;
  }
  return crcTables;
}

export function crc32(data: Uint8Array, crc = 0): number {
  const t = tables();
  let c = ~crc | 0;
  const n = data.length;
  let i = 0;
  if (data.byteOffset % 4 === 0 && LITTLE_ENDIAN) {
    // Word loads on the aligned bulk (little-endian hosts), bytes for the tail.
    const words = new Int32Array(data.buffer, data.byteOffset, n >>> 3 << 1);
    for (let w = 0; w < words.length; w += 2) {
      c ^= words[w] as number;
      const hi = words[w + 1] as number;
      c = (t[1792 + (c & 0xff)] as number) ^ (t[1536 + ((c >>> 8) & 0xff)] as number) ^ (t[1280 + ((c >>> 16) & 0xff)] as number) ^ (t[1024 + (c >>> 24)] as number)
        ^ (t[768 + (hi & 0xff)] as number) ^ (t[512 + ((hi >>> 8) & 0xff)] as number) ^ (t[256 + ((hi >>> 16) & 0xff)] as number) ^ (t[hi >>> 24] as number);
    }
    i = words.length * 4;
  }
  for (; i + 8 <= n; i += 8) {
    c ^= (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
    const hi = (data[i + 4] as number) | ((data[i + 5] as number) << 8) | ((data[i + 6] as number) << 16) | ((data[i + 7] as number) << 24);
    c = (t[1792 + (c & 0xff)] as number) ^ (t[1536 + ((c >>> 8) & 0xff)] as number) ^ (t[1280 + ((c >>> 16) & 0xff)] as number) ^ (t[1024 + (c >>> 24)] as number)
      ^ (t[768 + (hi & 0xff)] as number) ^ (t[512 + ((hi >>> 8) & 0xff)] as number) ^ (t[256 + ((hi >>> 16) & 0xff)] as number) ^ (t[hi >>> 24] as number);
  }
  for (; i < n; i++) c = (t[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

function dview(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(dv: DataView, at: number, what: string, source: string): number {
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  if (hi >= 0x200000) throw new FormatError(source, `zip: ${what} beyond 2^53`);
  return hi * 4294967296 + lo;
}

export class ZipArchive {
  private constructor(readonly source: ByteSource, readonly entries: ReadonlyMap<string, ZipEntry>) {}

  static async open(src: ByteSource): Promise<ZipArchive> {
    const name = src.name;
    const bad = (msg: string): never => {
      throw new FormatError(name, `zip: ${msg}`);
    };
    if (src.size < 22) bad('file too short for an end-of-central-directory record');
    const tailLen = Math.min(src.size, 22 + 0xffff);
    const tailStart = src.size - tailLen;
    const tail = await readRange(src, tailStart, tailLen, 'zip tail');
    const tv = dview(tail);
    let e = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) <= tailLen) {
        e = i;
        break;
      }
    }
    if (e < 0) bad('no end-of-central-directory record');
    const eocdPos = tailStart + e;
    let count = tv.getUint16(e + 10, true);
    let cdSize = tv.getUint32(e + 12, true);
    let cdOffset = tv.getUint32(e + 16, true);
    if (tv.getUint16(e + 4, true) !== 0 && tv.getUint16(e + 4, true) !== 0xffff) bad('multi-disk archives are not supported');
    let cdLimit = eocdPos;
    if (eocdPos >= 20) {
      const loc = await readRange(src, eocdPos - 20, 20, 'zip64 locator');
      const lv = dview(loc);
      if (lv.getUint32(0, true) === SIG_LOC64) {
        const recPos = u64(lv, 8, 'zip64 record offset', name);
        if (recPos + 56 > eocdPos - 20) bad('zip64 end record lies outside the file');
        const rec = dview(await readRange(src, recPos, 56, 'zip64 end record'));
        if (rec.getUint32(0, true) !== SIG_EOCD64) bad('bad zip64 end record signature');
        count = u64(rec, 32, 'entry count', name);
        cdSize = u64(rec, 40, 'central directory size', name);
        cdOffset = u64(rec, 48, 'central directory offset', name);
        cdLimit = recPos;
      }
    }
    if (cdOffset + cdSize > cdLimit) bad(`central directory (${cdSize} bytes at ${cdOffset}) runs past its end record`);
    if (count * 46 > cdSize) bad(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
    const cd = await readRange(src, cdOffset, cdSize, 'zip central directory');
    const cv = dview(cd);
    const names = new TextDecoder('utf-8');
    const entries = new Map<string, ZipEntry>();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || cv.getUint32(p, true) !== SIG_CEN) bad(`central directory entry ${i} is malformed`);
      const flags = cv.getUint16(p + 8, true);
      const method = cv.getUint16(p + 10, true);
      const crc = cv.getUint32(p + 16, true);
      let csize = cv.getUint32(p + 20, true);
      let size = cv.getUint32(p + 24, true);
      const nameLen = cv.getUint16(p + 28, true);
      const extraLen = cv.getUint16(p + 30, true);
      const commentLen = cv.getUint16(p + 32, true);
      let local = cv.getUint32(p + 42, true);
      const end = p + 46 + nameLen + extraLen + commentLen;
      if (end > cdSize) bad(`central directory entry ${i} runs past the directory`);
      const entryName = names.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extended information: the 64-bit values of fields saturated at 0xffffffff, in this order.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = cv.getUint16(x, true);
        const sz = cv.getUint16(x + 2, true);
        if (x + 4 + sz > xEnd) bad(`entry '${entryName}': extra field runs past its end`);
        if (id === 0x0001) {
          let q = x + 4;
          const next = (what: string) => {
            if (q + 8 > x + 4 + sz) bad(`entry '${entryName}': zip64 field lacks ${what}`);
            q += 8;
            return u64(cv, q - 8, what, name);
          };
          if (size === 0xffffffff) size = next('size');
          if (csize === 0xffffffff) csize = next('compressed size');
          if (local === 0xffffffff) local = next('local header offset');
        }
        x += 4 + sz;
      }
      if (flags & 1) bad(`entry '${entryName}' is encrypted`);
      if (local + 30 + csize > cdOffset) bad(`entry '${entryName}': data (${csize} bytes at ${local}) overlaps the central directory or lies outside the file`);
      if (entries.has(entryName)) bad(`duplicate entry '${entryName}'`);
      entries.set(entryName, { name: entryName, method, flags, crc32: crc, compressedSize: csize, size, localHeaderOffset: local });
      p = end;
    }
    return new ZipArchive(src, entries);
  }

  get(name: string): ZipEntry | undefined {
    return this.entries.get(name);
  }

  /** Offset of the entry's data, from its local header. */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const name = this.source.name;
    const h = dview(await readRange(this.source, entry.localHeaderOffset, 30, `local header of '${entry.name}'`));
    if (h.getUint32(0, true) !== SIG_LOC) throw new FormatError(name, `zip: bad local header signature for '${entry.name}'`);
    const start = entry.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
    if (start + entry.compressedSize > this.source.size) throw new FormatError(name, `zip: data of '${entry.name}' runs past the end of the file`);
    return start;
  }

  /** The entry's uncompressed bytes, CRC-checked. */
  async read(entry: ZipEntry): Promise<Uint8Array> {
    const name = this.source.name;
    const start = await this.dataOffset(entry);
    let out: Uint8Array;
    if (entry.method === 0) {
      if (entry.size !== entry.compressedSize) throw new FormatError(name, `zip: stored entry '${entry.name}' has different sizes`);
      out = await readRange(this.source, start, entry.size, `zip entry '${entry.name}'`);
    } else if (entry.method === 8) {
      if (entry.size > entry.compressedSize * MAX_DEFLATE_RATIO + 1024) throw new FormatError(name, `zip: entry '${entry.name}' claims ${entry.size} bytes from ${entry.compressedSize} compressed bytes`);
      out = await inflateRaw(await readRange(this.source, start, entry.compressedSize, `zip entry '${entry.name}'`), entry, name);
    } else {
      throw new FormatError(name, `zip: entry '${entry.name}' uses unsupported compression method ${entry.method}`);
    }
    if (crc32(out) !== entry.crc32) throw new FormatError(name, `zip: CRC mismatch in '${entry.name}'`);
    return out;
  }
}

async function inflateRaw(data: Uint8Array, entry: ZipEntry, source: string): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') throw new HlipError('format', `zip: entry '${entry.name}' is deflated and this runtime has no DecompressionStream`, { source });
  // Chunks are kept until the end so memory follows the real output, not the declared size.
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    const ds = new DecompressionStream('deflate-raw');
    const writer = ds.writable.getWriter();
    const done = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close());
    done.catch(() => undefined);
    const reader = ds.readable.getReader();
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      n += value.byteLength;
      if (n > entry.size) {
        await reader.cancel().catch(() => undefined);
        throw new FormatError(source, `zip: entry '${entry.name}' inflates to more than its declared ${entry.size} bytes`);
      }
      noteAllocation(value.byteLength, `inflate '${entry.name}'`);
      chunks.push(value);
    }
    await done;
  } catch (e) {
    if (e instanceof HlipError) throw e;
    throw new FormatError(source, `zip: entry '${entry.name}' is not valid deflate data: ${(e as Error).message}`, e);
  }
  if (n !== entry.size) throw new FormatError(source, `zip: entry '${entry.name}' inflates to ${n} bytes, not the declared ${entry.size}`);
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = allocBytes(n, `inflate '${entry.name}'`, source);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}
