// Study embeddings cached on disk for resumable, shardable evaluation (src/eval/eval-run.ts
// EmbeddingStore): each chunk is one safetensors file `emb-<tag>-<seq>.safetensors` (tensor
// `embeddings` [k, E], metadata 'hlip.keys' = the k case keys), written atomically, so a killed run
// loses at most the chunk it was computing. Every shard appends its own files to the same folder;
// loading reads them all. Per-shard status files record which cases a shard owns and whether it is done.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, HlipError } from '../errors.js';
import type { EmbeddingStore, Shard } from '../eval/eval-run.js';
import { writeFileAtomic, writeSafetensorsFile } from '../io/node-files.js';
import { parseSafetensors } from '../io/safetensors.js';

const CHUNK = /^emb-(.+)-(\d{6})\.safetensors$/;

export const shardTag = (s: Shard): string => `s${s.index}of${s.count}`;

export class DiskEmbeddingStore implements EmbeddingStore {
  private made = false;
  private seq = -1;

  /** `tag` names this writer's chunk files (one writer per tag at a time); `meta` goes into each file. */
  constructor(readonly dir: string, readonly tag: string, readonly meta: Record<string, string> = {}) {
    if (!/^[A-Za-z0-9_]+$/.test(tag)) throw new HlipError('config', `embedding store tag '${tag}' must be letters, digits and _`);
  }

  private async ensureDir(): Promise<void> {
    if (this.made) return;
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (e) {
      throw new HlipError('io', `cannot create the embedding cache folder: ${(e as Error).message}`, { source: this.dir, cause: e });
    }
    // Temporary files of writes that a kill interrupted (writeFileAtomic's '.<name>.<rand>.tmp').
    for (const f of await readdir(this.dir)) if (f.startsWith('.') && f.endsWith('.tmp') && f.includes(`emb-${this.tag}-`)) await rm(join(this.dir, f), { force: true });
    this.made = true;
  }

  async chunkFiles(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new HlipError('io', `cannot list the embedding cache: ${(e as Error).message}`, { source: this.dir, cause: e });
    }
    return names.filter((n) => CHUNK.test(n)).sort();
  }

  async load(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const name of await this.chunkFiles()) {
      const path = join(this.dir, name);
      const file = parseSafetensors(new Uint8Array(await readFile(path)), path);
      let keys: unknown;
      try {
        keys = JSON.parse(file.metadata?.['hlip.keys'] ?? 'null');
      } catch {
        keys = null;
      }
      const e = file.tensors.get('embeddings');
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string') || !e || e.shape.length !== 2 || e.shape[0] !== keys.length) {
        throw new FormatError(path, "not an embedding chunk (tensor 'embeddings' [k, E] and metadata 'hlip.keys' with k keys); delete it to recompute its studies");
      }
      const data = file.float32Sync('embeddings');
      const E = e.shape[1]!;
      (keys as string[]).forEach((k, i) => out.set(k, data.slice(i * E, (i + 1) * E)));
    }
    return out;
  }

  async append(keys: readonly string[], embeddings: readonly Float32Array[]): Promise<void> {
    if (keys.length !== embeddings.length) throw new HlipError('shape', `${keys.length} keys for ${embeddings.length} embeddings`);
    if (!keys.length) return;
    await this.ensureDir();
    if (this.seq < 0) {
      const mine = (await this.chunkFiles()).map((n) => CHUNK.exec(n)!).filter((m) => m[1] === this.tag);
      this.seq = mine.reduce((a, m) => Math.max(a, Number(m[2]) + 1), 0);
    }
    const E = embeddings[0]!.length;
    const data = new Float32Array(keys.length * E);
    embeddings.forEach((v, i) => {
      if (v.length !== E) throw new HlipError('shape', `embedding ${i} has ${v.length} values, the first ${E}`);
      data.set(v, i * E);
    });
    const name = `emb-${this.tag}-${String(this.seq).padStart(6, '0')}.safetensors`;
    await writeSafetensorsFile(join(this.dir, name), { embeddings: { dtype: 'F32', shape: [keys.length, E], data } }, { ...this.meta, 'hlip.keys': JSON.stringify(keys) });
    this.seq++;
  }
}

/** What one shard owns and how far it got (`shard-<i>-of-<n>.json` beside the chunks). */
export interface ShardStatus {
  shard: Shard;
  /** Cases (label row, score key) this shard evaluates, in order. */
  cases: { row: number; key: string }[];
  /** Label ids without files (skipped). */
  missing: { id: string; reason: string }[];
  complete: boolean;
}

export const shardStatusPath = (dir: string, s: Shard): string => join(dir, `shard-${s.index}-of-${s.count}.json`);

export async function writeShardStatus(dir: string, st: ShardStatus): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(shardStatusPath(dir, st.shard), new TextEncoder().encode(JSON.stringify(st)));
}

/** Status of every shard of an n-way split: null where that shard has not started. */
export async function readShardStatuses(dir: string, count: number): Promise<(ShardStatus | null)[]> {
  const out: (ShardStatus | null)[] = [];
  for (let i = 0; i < count; i++) {
    const path = shardStatusPath(dir, { index: i, count });
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        out.push(null);
        continue;
      }
      throw new HlipError('io', `cannot read shard status: ${(e as Error).message}`, { source: path, cause: e });
    }
    try {
      out.push(JSON.parse(text) as ShardStatus);
    } catch (e) {
      throw new FormatError(path, `shard status is not JSON: ${(e as Error).message}`, e);
    }
  }
  return out;
}
