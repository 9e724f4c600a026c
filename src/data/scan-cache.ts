// Cache of preprocessed scans (browser-safe part): the key of a scan (its file, the file's stamp and every
// option that shapes the result), an in-memory LRU cache, and the byte format a persistent cache stores
// (src/node/dataset.ts writes it to disk). Later epochs then skip decoding and preprocessing.
import { f32ToF16Bits } from '../dtype.js';
import { FormatError, HlipError } from '../errors.js';
import { decodeFloat32 } from '../io/dtypes.js';
import type { Shape3 } from './resample.js';

export type CacheDType = 'f32' | 'f16';

/** A preprocessed scan as cached: f32 values, or f16 bits. */
export interface CachedScan {
  shape: Shape3;
  dtype: CacheDType;
  data: Float32Array | Uint16Array;
}

export interface ScanKey {
  /** Canonical description of everything the scan depends on. */
  text: string;
  /** 64-bit hash of `text`, 16 hex digits: a file name. */
  hash: string;
}

export interface ScanCache {
  get(key: ScanKey): Promise<CachedScan | null>;
  set(key: ScanKey, scan: CachedScan): Promise<void>;
}

/** Two independent 32-bit FNV-1a lanes over the UTF-16 code units (not cryptographic; collisions are checked by `text`). */
export function hash64(text: string): string {
  let a = 0x811c9dc5, b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** JSON with object keys sorted, so equal options give equal keys whatever order they were written in. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function scanKey(parts: unknown): ScanKey {
  const text = canonicalJson(parts);
  return { text, hash: hash64(text) };
}

export function numelOf(shape: Shape3): number {
  return shape[0] * shape[1] * shape[2];
}

export function bytesOf(scan: CachedScan): number {
  return scan.data.byteLength;
}

/** Store `values` as `dtype` (f16: round to nearest even). */
export function toCached(values: Float32Array, shape: Shape3, dtype: CacheDType): CachedScan {
  if (values.length !== numelOf(shape)) throw new HlipError('shape', `cached scan: ${values.length} values for shape ${shape.join('×')}`);
  if (dtype === 'f32') return { shape, dtype, data: values };
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = f32ToF16Bits(values[i]!);
  return { shape, dtype, data: bits };
}

/** The cached values as a fresh float32 array. */
export function fromCached(scan: CachedScan): Float32Array {
  if (scan.dtype === 'f32') return new Float32Array(scan.data as Float32Array);
  const d = scan.data as Uint16Array;
  return decodeFloat32(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), 'F16', 'scan cache');
}

/** In-memory LRU cache bounded by bytes (default 512 MiB). */
export class MemoryScanCache implements ScanCache {
  private readonly map = new Map<string, { text: string; scan: CachedScan }>();
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes = 512 * 2 ** 20) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  async get(key: ScanKey): Promise<CachedScan | null> {
    const e = this.map.get(key.hash);
    if (!e || e.text !== key.text) {
      this.misses++;
      return null;
    }
    this.map.delete(key.hash); // re-insert: Map order is the recency order
    this.map.set(key.hash, e);
    this.hits++;
    return e.scan;
  }

  async set(key: ScanKey, scan: CachedScan): Promise<void> {
    const old = this.map.get(key.hash);
    if (old) {
      this.used -= bytesOf(old.scan);
      this.map.delete(key.hash);
    }
    const n = bytesOf(scan);
    if (n > this.maxBytes) return;
    for (const [k, e] of this.map) {
      if (this.used + n <= this.maxBytes) break;
      this.map.delete(k);
      this.used -= bytesOf(e.scan);
    }
    this.map.set(key.hash, { text: key.text, scan });
    this.used += n;
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }
}

// Persistent format: "HLIPSCAN" | u32 version 1 | u32 dtype (0 f32, 1 f16) | u32 D, H, W | u32 key bytes |
// key (UTF-8) | zero pad to 4 bytes | values (little-endian). The key is stored so a hash collision or a
// file from other options reads as a miss, never as wrong data.
const MAGIC = 'HLIPSCAN';
const HEADER = 8 + 6 * 4;

export function encodeCachedScan(key: ScanKey, scan: CachedScan): Uint8Array {
  const keyBytes = new TextEncoder().encode(key.text);
  const dataOff = HEADER + Math.ceil(keyBytes.length / 4) * 4;
  const out = new Uint8Array(dataOff + scan.data.byteLength);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  const dv = new DataView(out.buffer);
  [1, scan.dtype === 'f32' ? 0 : 1, ...scan.shape, keyBytes.length].forEach((v, i) => dv.setUint32(8 + 4 * i, v, true));
  out.set(keyBytes, HEADER);
  const d = scan.data;
  if (d instanceof Float32Array) for (let i = 0; i < d.length; i++) dv.setFloat32(dataOff + 4 * i, d[i]!, true);
  else for (let i = 0; i < d.length; i++) dv.setUint16(dataOff + 2 * i, d[i]!, true);
  return out;
}

/**
 * Parse a stored scan. A file for another key gives null (a miss); a damaged file (truncated, wrong
 * magic) is a FormatError naming `source`, so callers can discard and rebuild it.
 */
export function decodeCachedScan(bytes: Uint8Array, key: ScanKey, source: string): CachedScan | null {
  if (bytes.length < HEADER || String.fromCharCode(...bytes.subarray(0, 8)) !== MAGIC) throw new FormatError(source, 'not a scan cache file (bad magic or too short)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u = (i: number) => dv.getUint32(8 + 4 * i, true);
  if (u(0) !== 1) throw new FormatError(source, `scan cache version ${u(0)} is not supported`);
  const dtype: CacheDType | null = u(1) === 0 ? 'f32' : u(1) === 1 ? 'f16' : null;
  if (!dtype) throw new FormatError(source, `unknown scan cache dtype code ${u(1)}`);
  const shape: Shape3 = [u(2), u(3), u(4)];
  const keyLen = u(5);
  if (HEADER + keyLen > bytes.length) throw new FormatError(source, 'truncated scan cache file (key)');
  const text = new TextDecoder().decode(bytes.subarray(HEADER, HEADER + keyLen));
  if (text !== key.text) return null;
  const dataOff = HEADER + Math.ceil(keyLen / 4) * 4;
  const n = numelOf(shape);
  const per = dtype === 'f32' ? 4 : 2;
  if (bytes.length !== dataOff + n * per) throw new FormatError(source, `truncated scan cache file: ${bytes.length} bytes, expected ${dataOff + n * per}`);
  const body = bytes.slice(dataOff).buffer; // copy: aligned, and independent of the read buffer
  if (dtype === 'f32') {
    const data = new Float32Array(n);
    const bv = new DataView(body);
    for (let i = 0; i < n; i++) data[i] = bv.getFloat32(4 * i, true);
    return { shape, dtype, data };
  }
  const data = new Uint16Array(n);
  const bv = new DataView(body);
  for (let i = 0; i < n; i++) data[i] = bv.getUint16(2 * i, true);
  return { shape, dtype, data };
}
