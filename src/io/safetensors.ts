import { FormatError, HlipError } from '../errors.js';
import { ST_DTYPE_BYTES, decodeFloat32, decodeFloat64, decodeInt32, encodeTensor, isStDType, type HostData, type StDType } from './dtypes.js';
import { allocBytes, checkedLength } from './limits.js';
import { readRange, readRangeSync, toSource, type ByteInput, type ByteSource } from './source.js';

/** Same cap as the reference Rust implementation: headers above 100 MB are refused. */
export const MAX_SAFETENSORS_HEADER = 100_000_000;

/** One tensor of a safetensors file: where its bytes are, not the bytes themselves. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: StDType;
  readonly shape: readonly number[];
  /** Absolute offset in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Offset of the data section (8 + header length). */
  readonly dataStart: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Header length from the first 8 bytes, checked against the file size and the cap. */
export function headerLength(first8: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8 || first8.byteLength < 8) throw new FormatError(source, `safetensors file of ${fileSize} bytes is shorter than its 8-byte header length`);
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  if (hi !== 0 || lo > MAX_SAFETENSORS_HEADER) throw new FormatError(source, `safetensors header length ${hi * 2 ** 32 + lo} exceeds the ${MAX_SAFETENSORS_HEADER}-byte cap`);
  if (lo < 2) throw new FormatError(source, `safetensors header length ${lo} is too small`);
  if (8 + lo > fileSize) throw new FormatError(source, `safetensors header length ${lo} runs past the end of the ${fileSize}-byte file`);
  return lo;
}

function safeInt(v: unknown, what: string, source: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new FormatError(source, `${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Validate the JSON header; `dataSize` is the number of bytes after the header. */
export function parseSafetensorsHeader(json: Uint8Array, dataStart: number, dataSize: number, source: string): SafetensorsHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new FormatError(source, `safetensors header is not valid UTF-8 JSON: ${(e as Error).message}`, e);
  }
  if (!isRecord(parsed)) throw new FormatError(source, 'safetensors header must be a JSON object');
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, SafetensorsEntry>();
  const spans: [number, number, string][] = [];
  for (const name of Object.keys(parsed)) {
    const v = parsed[name];
    if (name === '__metadata__') {
      if (!isRecord(v)) throw new FormatError(source, '__metadata__ must be an object of strings');
      metadata = Object.create(null) as Record<string, string>;
      for (const k of Object.keys(v)) {
        const s = v[k];
        if (typeof s !== 'string') throw new FormatError(source, `__metadata__.${k} must be a string`);
        metadata[k] = s;
      }
      continue;
    }
    if (!isRecord(v)) throw new FormatError(source, `tensor '${name}': entry must be an object`);
    const { dtype, shape, data_offsets: offs } = v;
    if (!isStDType(dtype)) throw new FormatError(source, `tensor '${name}': unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape)) throw new FormatError(source, `tensor '${name}': shape must be an array`);
    if (!Array.isArray(offs) || offs.length !== 2) throw new FormatError(source, `tensor '${name}': data_offsets must be [begin, end]`);
    const dims = shape.map((d, i) => safeInt(d, `tensor '${name}': shape[${i}]`, source));
    const begin = safeInt(offs[0], `tensor '${name}': data_offsets[0]`, source);
    const end = safeInt(offs[1], `tensor '${name}': data_offsets[1]`, source);
    if (begin > end || end > dataSize) throw new FormatError(source, `tensor '${name}': data_offsets [${begin}, ${end}] lie outside the ${dataSize}-byte data section`);
    // Element count with an overflow check: any product beyond the data section is already wrong.
    let numel = dims.includes(0) ? 0 : 1;
    for (const d of dims) {
      if (numel === 0 || numel > dataSize) break;
      numel *= d;
    }
    const nbytes = numel * ST_DTYPE_BYTES[dtype];
    if (nbytes !== end - begin) throw new FormatError(source, `tensor '${name}': ${dtype}${JSON.stringify(dims)} needs ${dims.includes(0) ? 0 : nbytes > dataSize ? 'more than the whole file' : nbytes} bytes but data_offsets span ${end - begin}`);
    tensors.set(name, { name, dtype, shape: dims, byteOffset: dataStart + begin, byteLength: end - begin });
    spans.push([begin, end, name]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    const [b, , n] = spans[i] as [number, number, string];
    const [, pe, pn] = spans[i - 1] as [number, number, string];
    if (b < pe) throw new FormatError(source, `tensors '${pn}' and '${n}' overlap in the data section`);
  }
  return { tensors, metadata, dataStart };
}

/** A safetensors file opened for lazy, one-tensor-at-a-time reading. */
export class SafetensorsFile implements SafetensorsHeader {
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly dataStart: number;
  constructor(readonly source: ByteSource, header: SafetensorsHeader) {
    this.tensors = header.tensors;
    this.metadata = header.metadata;
    this.dataStart = header.dataStart;
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  entry(name: string): SafetensorsEntry {
    const e = this.tensors.get(name);
    if (!e) throw new FormatError(this.source.name, `no tensor named '${name}'`);
    return e;
  }

  /** Raw little-endian bytes (a view when the source is in memory). */
  async bytes(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    return readRange(this.source, e.byteOffset, e.byteLength, `tensor '${name}'`);
  }

  bytesSync(name: string): Uint8Array {
    const e = this.entry(name);
    return readRangeSync(this.source, e.byteOffset, e.byteLength, `tensor '${name}'`);
  }

  /** Decoded to float32 (F16/BF16/F64/integers converted; 64-bit integers must be within ±2^53). */
  async float32(name: string): Promise<Float32Array> {
    return decodeFloat32(await this.bytes(name), this.entry(name).dtype, `${this.source.name}: ${name}`);
  }

  float32Sync(name: string): Float32Array {
    return decodeFloat32(this.bytesSync(name), this.entry(name).dtype, `${this.source.name}: ${name}`);
  }

  async float64(name: string): Promise<Float64Array> {
    return decodeFloat64(await this.bytes(name), this.entry(name).dtype, `${this.source.name}: ${name}`);
  }

  /** Integer tensors as int32, each value range-checked. */
  async int32(name: string): Promise<Int32Array> {
    return decodeInt32(await this.bytes(name), this.entry(name).dtype, `${this.source.name}: ${name}`);
  }

  int32Sync(name: string): Int32Array {
    return decodeInt32(this.bytesSync(name), this.entry(name).dtype, `${this.source.name}: ${name}`);
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

/** Open from bytes, a Blob/File or a ByteSource: reads only the header now. */
export async function openSafetensors(input: ByteInput, name?: string): Promise<SafetensorsFile> {
  const src = toSource(input, name);
  const n = headerLength(src.size >= 8 ? await readRange(src, 0, 8, 'header length') : new Uint8Array(0), src.size, src.name);
  const json = await readRange(src, 8, n, 'header');
  return new SafetensorsFile(src, parseSafetensorsHeader(json, 8 + n, src.size - 8 - n, src.name));
}

/** Synchronous parse of an in-memory file; tensor bytes are views of `data`. */
export function parseSafetensors(data: Uint8Array | ArrayBuffer, name = '<buffer>'): SafetensorsFile {
  const src = toSource(data, name);
  const n = headerLength(src.size >= 8 ? readRangeSync(src, 0, 8, 'header length') : new Uint8Array(0), src.size, src.name);
  return new SafetensorsFile(src, parseSafetensorsHeader(readRangeSync(src, 8, n, 'header'), 8 + n, src.size - 8 - n, src.name));
}

// ---------------------------------------------------------------- writing

export interface TensorToWrite {
  dtype: StDType;
  shape: readonly number[];
  /** Values; converted to `dtype` when the array type differs. A Uint8Array is raw bytes in `dtype`. A function is called when the tensor is written (streaming). */
  data: HostData | (() => HostData | Promise<HostData>);
}

export type TensorsToWrite = Iterable<readonly [string, TensorToWrite]> | Record<string, TensorToWrite>;

interface Planned {
  name: string;
  t: TensorToWrite;
  begin: number;
  nbytes: number;
}

export interface SafetensorsPlan {
  /** 8-byte length + JSON header padded with spaces to a multiple of 8. */
  readonly header: Uint8Array;
  readonly tensors: readonly Planned[];
  readonly totalBytes: number;
}

function entriesOf(t: TensorsToWrite): [string, TensorToWrite][] {
  if (Symbol.iterator in t) return [...(t as Iterable<readonly [string, TensorToWrite]>)].map(([k, v]) => [k, v]);
  return Object.keys(t).map((k) => [k, (t as Record<string, TensorToWrite>)[k] as TensorToWrite]);
}

/**
 * Lay out a file: tensors ordered by element size (largest first, otherwise in the given order) so
 * each starts at a multiple of its element size, as the golden fixtures are laid out.
 */
export function planSafetensors(tensors: TensorsToWrite, metadata?: Record<string, string> | null): SafetensorsPlan {
  const list = entriesOf(tensors);
  const seen = new Set<string>();
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new FormatError('<writer>', "'__metadata__' cannot be a tensor name");
    if (seen.has(name)) throw new FormatError('<writer>', `duplicate tensor name '${name}'`);
    seen.add(name);
    if (!isStDType(t.dtype)) throw new FormatError('<writer>', `tensor '${name}': unknown dtype ${String(t.dtype)}`);
    for (const d of t.shape) if (!Number.isSafeInteger(d) || d < 0) throw new FormatError('<writer>', `tensor '${name}': bad dimension ${d}`);
  }
  const ordered = list.map((e, i) => ({ e, i })).sort((a, b) => ST_DTYPE_BYTES[b.e[1].dtype] - ST_DTYPE_BYTES[a.e[1].dtype] || a.i - b.i);
  const planned: Planned[] = [];
  // Null prototype: a tensor named '__proto__' must become a key, not a prototype.
  const header = Object.create(null) as Record<string, unknown>;
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new FormatError('<writer>', `__metadata__.${k} must be a string`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const { e: [name, t] } of ordered) {
    const nbytes = t.shape.reduce((a, b) => a * b, 1) * ST_DTYPE_BYTES[t.dtype];
    checkedLength(nbytes, `tensor '${name}'`, '<writer>');
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + nbytes] };
    planned.push({ name, t, begin: offset, nbytes });
    offset += nbytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setUint32(0, padded, true);
  head.set(json, 8);
  return { header: head, tensors: planned, totalBytes: head.byteLength + offset };
}

function encodePlanned(p: Planned, data: HostData): Uint8Array {
  const bytes = encodeTensor(data, p.t.dtype, `tensor '${p.name}'`);
  if (bytes.byteLength !== p.nbytes) throw new FormatError('<writer>', `tensor '${p.name}': ${p.t.dtype}[${p.t.shape.join(', ')}] needs ${p.nbytes} bytes, data has ${bytes.byteLength}`);
  return bytes;
}

/** Serialise in memory (data must be arrays, not functions). */
export function writeSafetensors(tensors: TensorsToWrite, metadata?: Record<string, string> | null): Uint8Array<ArrayBuffer> {
  const plan = planSafetensors(tensors, metadata);
  const out = allocBytes(plan.totalBytes, 'safetensors file', '<writer>');
  out.set(plan.header);
  for (const p of plan.tensors) {
    if (typeof p.t.data === 'function') throw new HlipError('io', `tensor '${p.name}': writeSafetensors needs data arrays; use safetensorsChunks for lazy data`);
    out.set(encodePlanned(p, p.t.data), plan.header.byteLength + p.begin);
  }
  return out;
}

/** Stream a file chunk by chunk (header, then one tensor at a time), for writers that must not hold the model twice. */
export async function* safetensorsChunks(tensors: TensorsToWrite | SafetensorsPlan, metadata?: Record<string, string> | null): AsyncGenerator<Uint8Array> {
  const plan = 'header' in tensors && tensors.header instanceof Uint8Array ? (tensors as SafetensorsPlan) : planSafetensors(tensors as TensorsToWrite, metadata);
  yield plan.header;
  for (const p of plan.tensors) {
    const data = typeof p.t.data === 'function' ? await p.t.data() : p.t.data;
    yield encodePlanned(p, data);
  }
}
