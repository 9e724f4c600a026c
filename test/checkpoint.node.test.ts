// Training checkpoints on disk: bit-identical round trip, atomic replacement, typed errors naming the file.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, HlipError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import type { TrainingCheckpoint } from '../src/train/checkpoint.js';
import { loadCheckpointFile, saveCheckpointFile } from '../src/train/checkpoint-node.js';
import { Trainer } from '../src/train/trainer.js';
import { getDevice } from './helpers/device.js';
import { tinyBatch, tinyClip } from './helpers/tiny_clip.js';

let dev: Device;
let dir: string;
beforeAll(async () => {
  dev = await getDevice();
  dir = await mkdtemp(join(tmpdir(), 'hlip-ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function trained(steps: number): Promise<{ tr: Trainer; m: ReturnType<typeof tinyClip> }> {
  const m = tinyClip(dev, { text: 'bert' });
  const tr = new Trainer(m, { accumFreq: 2, seed: 7, lockText: {}, gradClipNorm: 1 });
  for (let s = 0; s < steps; s++) await tr.step([tinyBatch(s), tinyBatch(s + 50)]);
  return { tr, m };
}

describe('training checkpoint files', () => {
  it('save → load is bit-identical; restoring and saving again gives the same file', async () => {
    const { tr, m } = await trained(2);
    const loader = { epoch: 0, position: 4, order: [3, 1, 0, 2], note: 'ü' };
    const config = { model: 'tiny', lr: 5e-4, nested: { a: [1, null, true] } };
    const ck = await tr.checkpoint({ epoch: 3, loader, config });
    const path = join(dir, 'latest.safetensors');
    await saveCheckpointFile(path, ck);
    const back = await loadCheckpointFile(path);
    expect(back.step).toBe(2);
    expect(back.epoch).toBe(3);
    expect(back.loader).toEqual(loader);
    expect(back.config).toEqual(config);
    expect(back.rng).toEqual({ algorithm: 'philox4x32-10', seed: 7 });
    expect(back.optimizerParams).toEqual(ck.optimizerParams);
    expect([...back.model.keys()]).toEqual([...ck.model.keys()]);
    for (const [n, t] of ck.model) {
      const b = back.model.get(n)!;
      expect(b.shape, n).toEqual(t.shape);
      expect(Buffer.compare(bytesOf(b.data), bytesOf(t.data)), n).toBe(0);
    }
    expect(back.optimizer.paramGroups).toEqual(ck.optimizer.paramGroups);
    // Frozen BERT weights have no optimizer entry; trained ones have moments and a step count of 2.
    expect(ck.optimizer.state.filter((s) => s !== null).length).toBe(ck.optimizer.state.length);
    ck.optimizer.state.forEach((s, i) => {
      const b = back.optimizer.state[i]!;
      expect(b.step).toBe(s!.step);
      expect(Buffer.compare(bytesOf(b.expAvg), bytesOf(s!.expAvg))).toBe(0);
      expect(Buffer.compare(bytesOf(b.expAvgSq), bytesOf(s!.expAvgSq))).toBe(0);
    });
    // A fresh model and trainer restored from the file write the very same bytes.
    const m2 = tinyClip(dev, { text: 'bert' });
    const tr2 = new Trainer(m2, { accumFreq: 2, seed: 7, lockText: {}, gradClipNorm: 1 });
    tr2.restore(back, path);
    const path2 = join(dir, 'again.safetensors');
    await saveCheckpointFile(path2, await tr2.checkpoint({ epoch: 3, loader, config }));
    expect(Buffer.compare(await readFile(path), await readFile(path2))).toBe(0);
    for (const x of [tr, tr2]) x.dispose();
    for (const x of [m, m2]) x.dispose();
  });

  it('a failed write leaves the previous file whole and no temporary behind', async () => {
    const { tr, m } = await trained(1);
    const ck = await tr.checkpoint({ epoch: 0, loader: { position: 1 } });
    const path = join(dir, 'atomic.safetensors');
    await saveCheckpointFile(path, ck);
    const before = await readFile(path);
    // A tensor whose data is shorter than its shape fails while the file is being streamed.
    const broken: TrainingCheckpoint = { ...ck, model: new Map([...ck.model, ['zz.broken', { shape: [1000], data: new Float32Array(10) }]]) };
    await expect(saveCheckpointFile(path, broken)).rejects.toThrow(/zz\.broken/);
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect((await loadCheckpointFile(path)).step).toBe(1);
    tr.dispose();
    m.dispose();
  });

  it('truncated, foreign and mismatched files fail with typed errors naming the file', async () => {
    const { tr, m } = await trained(1);
    const ck = await tr.checkpoint();
    const good = join(dir, 'good.safetensors');
    await saveCheckpointFile(good, ck);
    const bytes = await readFile(good);
    const cut = join(dir, 'cut.safetensors');
    await writeFile(cut, bytes.subarray(0, bytes.length - 100));
    const e1 = await loadCheckpointFile(cut).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(FormatError);
    expect(String((e1 as Error).message)).toContain(cut);
    // A plain safetensors file (weights only) is not a training checkpoint.
    const plain = join(dir, 'plain.safetensors');
    await writeFile(plain, writeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } }));
    await expect(loadCheckpointFile(plain)).rejects.toThrow(new RegExp(`${plain.replace(/[.]/g, '\\.')}.*not a training checkpoint`));
    await expect(loadCheckpointFile(join(dir, 'missing.safetensors'))).rejects.toBeInstanceOf(HlipError);
    // Restoring into a model trained with different settings (no lock-text) names the file.
    const back = await loadCheckpointFile(good);
    const m2 = tinyClip(dev, { text: 'bert' });
    const tr2 = new Trainer(m2, { accumFreq: 2 });
    let err: unknown = null;
    try {
      tr2.restore(back, good);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HlipError);
    expect((err as HlipError).source).toBe(good);
    expect((err as Error).message).toMatch(/lock-text/);
    for (const x of [tr, tr2]) x.dispose();
    for (const x of [m, m2]) x.dispose();
  });
});
