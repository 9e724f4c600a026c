import { FormatError, HlipError } from '../errors.js';
import { checkedLength, noteAllocation } from './limits.js';

/**
 * Random-access bytes: an in-memory buffer, a browser Blob/File, or (src/io/node-files.ts) a file
 * handle. Readers fetch only the ranges they need, so a large model is never held twice.
 */
export interface ByteSource {
  /** Name used in error messages (file name when there is one). */
  readonly name: string;
  readonly size: number;
  /** Bytes [offset, offset + length). The result may view shared memory: do not write to it. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Present on in-memory sources: the same without a promise. */
  readSync?(offset: number, length: number): Uint8Array;
  close?(): Promise<void>;
}

export type ByteInput = ByteSource | Uint8Array | ArrayBuffer | Blob;

export function bytesSource(data: Uint8Array | ArrayBuffer, name = '<buffer>'): ByteSource {
  const u8 = data instanceof Uint8Array ? data : new Uint8Array(data);
  const readSync = (offset: number, length: number) => u8.subarray(offset, offset + length);
  return { name, size: u8.byteLength, readSync, read: async (o, l) => readSync(o, l) };
}

export function blobSource(blob: Blob, name?: string): ByteSource {
  const label = name ?? ((blob as Partial<File>).name || '<blob>');
  return {
    name: label,
    size: blob.size,
    async read(offset, length) {
      try {
        return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      } catch (e) {
        throw new HlipError('io', `reading bytes ${offset}..${offset + length}: ${(e as Error).message}`, { source: label, cause: e });
      }
    },
  };
}

function isSource(x: unknown): x is ByteSource {
  return typeof x === 'object' && x !== null && typeof (x as ByteSource).read === 'function' && typeof (x as ByteSource).size === 'number';
}

export function toSource(input: ByteInput, name?: string): ByteSource {
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) return bytesSource(input, name);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return blobSource(input, name);
  if (isSource(input)) return input;
  throw new HlipError('io', 'expected a Uint8Array, ArrayBuffer, Blob/File or ByteSource');
}

function checkRange(src: ByteSource, offset: number, length: number, what: string): void {
  checkedLength(length, what, src.name);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > src.size) {
    throw new FormatError(src.name, `${what}: bytes ${offset}..${offset + length} lie outside the ${src.size}-byte file`);
  }
}

/** Bounds-checked read: a range beyond the file is a FormatError, never a huge allocation. */
export async function readRange(src: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> {
  checkRange(src, offset, length, what);
  if (!src.readSync) noteAllocation(length, what);
  const out = await src.read(offset, length);
  if (out.byteLength !== length) throw new HlipError('io', `${what}: short read (${out.byteLength} of ${length} bytes)`, { source: src.name });
  return out;
}

export function readRangeSync(src: ByteSource, offset: number, length: number, what: string): Uint8Array {
  if (!src.readSync) throw new HlipError('io', `${what}: synchronous read needs an in-memory source`, { source: src.name });
  checkRange(src, offset, length, what);
  return src.readSync(offset, length);
}
