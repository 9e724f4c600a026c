// Node adapter of the dataset layer: StudyFiles over a data root on disk, the on-disk cache of
// preprocessed scans, and manifest files.
import { mkdir, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FormatError, HlipError } from '../errors.js';
import { StudyDataset, type StudyDatasetOptions } from '../data/dataset.js';
import { parseManifest, type FileInfo, type Manifest, type StudyFiles, type VolumeReadSettings } from '../data/manifest.js';
import { decodeCachedScan, encodeCachedScan, type CachedScan, type ScanCache, type ScanKey } from '../data/scan-cache.js';
import { writeFileAtomic } from '../io/node-files.js';
import { readVolume } from '../io/node-volume.js';
import type { Volume } from '../io/volume.js';

/** StudyFiles over the folder `root`; stamps are size and modification time, so edited files miss the cache. */
export function nodeStudyFiles(root: string): StudyFiles {
  const base = resolve(root);
  const abs = (p: string) => join(base, ...p.split('/'));
  return {
    name: base,
    async stat(p: string): Promise<FileInfo | null> {
      try {
        const s = await stat(abs(p));
        if (s.isDirectory()) return { kind: 'dir', stamp: `${s.mtimeMs}` };
        if (s.isFile()) return { kind: 'file', stamp: `${s.size}:${s.mtimeMs}` };
        return null;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
        throw new HlipError('io', `cannot stat: ${(e as Error).message}`, { source: abs(p), cause: e });
      }
    },
    readVolume(p: string, opts: VolumeReadSettings): Promise<Volume> {
      return readVolume(abs(p), opts);
    },
  };
}

/** Read and parse a manifest JSON file. */
export async function readManifestFile(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new HlipError('io', `cannot read manifest: ${(e as Error).message}`, { source: path, cause: e });
  }
  return parseManifest(text, path);
}

/**
 * Preprocessed scans as files `<dir>/<hash>.scan` (header with the full key, then raw little-endian f32 or
 * f16 values), written atomically. A damaged file is deleted and counts as a miss.
 */
export class DiskScanCache implements ScanCache {
  hits = 0;
  misses = 0;
  writes = 0;
  private made = false;

  constructor(readonly dir: string) {}

  pathOf(key: ScanKey): string {
    return join(this.dir, `${key.hash}.scan`);
  }

  async get(key: ScanKey): Promise<CachedScan | null> {
    const path = this.pathOf(key);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new HlipError('io', `cannot read cached scan: ${(e as Error).message}`, { source: path, cause: e });
      this.misses++;
      return null;
    }
    let scan: CachedScan | null;
    try {
      scan = decodeCachedScan(bytes, key, path);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      await unlink(path).catch(() => undefined);
      scan = null;
    }
    if (scan) this.hits++;
    else this.misses++;
    return scan;
  }

  async set(key: ScanKey, scan: CachedScan): Promise<void> {
    if (!this.made) {
      try {
        await mkdir(this.dir, { recursive: true });
      } catch (e) {
        throw new HlipError('io', `cannot create the scan cache folder: ${(e as Error).message}`, { source: this.dir, cause: e });
      }
      this.made = true;
    }
    await writeFileAtomic(this.pathOf(key), encodeCachedScan(key, scan));
    this.writes++;
  }
}

export interface OpenDatasetOptions extends Omit<StudyDatasetOptions, 'manifest' | 'files' | 'persistentCache'> {
  /** Manifest JSON file. */
  manifest: string;
  /** Data root (default: the manifest's folder, where `hlip synth` puts the studies). */
  root?: string;
  /** Folder of the on-disk scan cache (default none). */
  cacheDir?: string;
}

/** A StudyDataset over files: manifest, data root and (optionally) an on-disk scan cache. */
export async function openStudyDataset(opts: OpenDatasetOptions): Promise<StudyDataset> {
  const { manifest, root, cacheDir, ...rest } = opts;
  return new StudyDataset({
    ...rest,
    manifest: await readManifestFile(manifest),
    files: nodeStudyFiles(root ?? dirname(manifest)),
    persistentCache: cacheDir ? new DiskScanCache(cacheDir) : null,
  });
}
