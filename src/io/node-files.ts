// Node-only file access for src/io: positioned reads through a file handle, atomic writes.
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { HlipError } from '../errors.js';
import { prepareConversion, type ConvertOptions } from './convert.js';
import { readPt, type PtCheckpoint, type PtReadOptions } from './pt.js';
import { openSafetensors, safetensorsChunks, type SafetensorsFile, type TensorsToWrite } from './safetensors.js';
import type { ByteSource } from './source.js';

function ioError(path: string, what: string, e: unknown): HlipError {
  return new HlipError('io', `${what}: ${(e as Error).message}`, { source: path, cause: e });
}

/** A ByteSource over a file: each read is a positioned read of just that range. Close it when done. */
export async function openFileSource(path: string): Promise<ByteSource> {
  let fh;
  let size: number;
  try {
    fh = await open(path, 'r');
    size = (await fh.stat()).size;
  } catch (e) {
    await fh?.close().catch(() => undefined);
    throw ioError(path, 'cannot open', e);
  }
  const handle = fh;
  return {
    name: path,
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        let n: number;
        try {
          ({ bytesRead: n } = await handle.read(out, done, length - done, offset + done));
        } catch (e) {
          throw ioError(path, 'read failed', e);
        }
        if (n === 0) throw new HlipError('io', `unexpected end of file at byte ${offset + done} (file changed while reading?)`, { source: path });
        done += n;
      }
      return out;
    },
    close: () => handle.close(),
  };
}

export type Chunks = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** Write to a temporary file in the same directory, fsync, then rename over `path`: readers never see a partial file. */
export async function writeFileAtomic(path: string, data: Chunks): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  let fh;
  try {
    fh = await open(tmp, 'wx');
  } catch (e) {
    throw ioError(path, 'cannot create temporary file', e);
  }
  try {
    const chunks = data instanceof Uint8Array ? [data] : data;
    for await (const c of chunks) {
      let done = 0;
      while (done < c.byteLength) done += (await fh.write(c, done, c.byteLength - done)).bytesWritten;
    }
    await fh.sync();
    await fh.close();
    fh = null;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e instanceof HlipError ? e : ioError(path, 'write failed', e);
  }
  // Persist the rename itself; not every platform can open a directory, so this is best effort.
  try {
    const dir = await open(dirname(path), 'r');
    await dir.sync().catch(() => undefined);
    await dir.close();
  } catch {
    /* best effort */
  }
}

/** Open a .safetensors file for lazy reading (close it when done). */
export async function readSafetensorsFile(path: string): Promise<SafetensorsFile> {
  const src = await openFileSource(path);
  try {
    return await openSafetensors(src);
  } catch (e) {
    await src.close?.();
    throw e;
  }
}

/** Atomically write a safetensors file, encoding one tensor at a time. */
export async function writeSafetensorsFile(path: string, tensors: TensorsToWrite, metadata?: Record<string, string> | null): Promise<void> {
  await writeFileAtomic(path, safetensorsChunks(tensors, metadata));
}

/** Read a .pt checkpoint; tensors stay on disk until asked for (close it when done). */
export async function readPtFile(path: string, opts: PtReadOptions = {}): Promise<PtCheckpoint> {
  const src = await openFileSource(path);
  try {
    return await readPt(src, opts);
  } catch (e) {
    await src.close?.();
    throw e;
  }
}

/** `hlip convert in.pt|in.safetensors out.safetensors`: streams tensor by tensor into an atomic write. */
export async function convertFile(inPath: string, outPath: string, opts: ConvertOptions = {}): Promise<{ tensors: number; bytes: number }> {
  const src = await openFileSource(inPath);
  try {
    const conv = await prepareConversion(src, opts);
    await writeFileAtomic(outPath, conv.chunks());
    return { tensors: conv.plan.tensors.length, bytes: conv.totalBytes };
  } finally {
    await src.close?.();
  }
}
