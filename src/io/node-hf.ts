// Node access to a Hugging Face snapshot directory, and `hlip convert <hf-dir> <out.safetensors>`.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HlipError, ShapeError } from '../errors.js';
import { openClipShapeMismatch } from '../models/openclip.js';
import { prepareConversion, type ConvertOptions } from './convert.js';
import { hfPath, openHfSnapshot, type HfFileAccess, type HfOptions } from './hf.js';
import { openFileSource, writeFileAtomic } from './node-files.js';

/** Folders a snapshot walk skips (VCS and cache metadata, not model files). */
const SKIP = new Set(['.git', '.cache', '.huggingface', 'node_modules', '__pycache__']);
/** Snapshot files of interest sit at most a few folders deep (hlip/model_configs/x.json). */
const MAX_DEPTH = 4;

/** File access over a local snapshot directory (e.g. from `huggingface-cli download`). */
export async function nodeHfFiles(dir: string): Promise<HfFileAccess> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new HlipError('io', 'not a directory', { source: dir });
  } catch (e) {
    if (e instanceof HlipError) throw e;
    throw new HlipError('io', `cannot open the snapshot directory: ${(e as Error).message}`, { source: dir, cause: e });
  }
  let cached: string[] | null = null;
  const walk = async (rel: string, depth: number, out: string[]): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!SKIP.has(e.name) && depth < MAX_DEPTH) await walk(p, depth + 1, out);
      } else if (e.isFile() || e.isSymbolicLink()) out.push(p); // HF cache snapshots are symlinks to blobs
    }
  };
  const access: HfFileAccess = {
    name: dir,
    async list() {
      if (!cached) {
        const out: string[] = [];
        await walk('', 0, out);
        cached = out;
      }
      return cached;
    },
    async open(path) {
      if (path.split('/').includes('..')) throw new HlipError('io', 'path leaves the snapshot', { source: hfPath(access, path) });
      return openFileSource(join(dir, ...path.split('/')));
    },
  };
  return access;
}

/** True when `path` is a directory (convert takes an HF snapshot directory as well as a file). */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export interface HfConvertResult {
  tensors: number;
  bytes: number;
  modelName: string;
  configPath: string;
}

/**
 * `hlip convert <hf-dir> <out.safetensors>`: the snapshot's model.safetensors (names without
 * `module.`, optional dtype cast), checked against the chosen model config's shapes, with the config
 * in `__metadata__` (`hlip.model_name`, `hlip.model_config`: the open_clip JSON), streamed tensor by
 * tensor into an atomic write.
 */
export async function convertHfDir(dir: string, outPath: string, opts: HfOptions & Pick<ConvertOptions, 'floatDType'> = {}): Promise<HfConvertResult> {
  const files = await nodeHfFiles(dir);
  const snap = await openHfSnapshot(files, opts);
  try {
    const why = openClipShapeMismatch(snap.config.config, snap.shapes, opts.visual);
    if (why) throw new ShapeError(`${snap.weightsPath}: does not fit the model config ${hfPath(files, snap.config.path)}: ${why}`);
    const conv = await prepareConversion(snap.weights.source, {
      name: snap.weightsPath,
      ...(opts.floatDType ? { floatDType: opts.floatDType } : {}),
      metadata: { format: 'hf', 'hlip.model_name': snap.config.name, 'hlip.model_config': JSON.stringify(snap.config.config), 'hlip.config_path': snap.config.path },
    });
    await writeFileAtomic(outPath, conv.chunks());
    return { tensors: conv.plan.tensors.length, bytes: conv.totalBytes, modelName: snap.config.name, configPath: snap.config.path };
  } finally {
    await snap.close();
  }
}
