// Dataset layer on files (Node): a tiny synthetic MRI set written by synthFiles, read through
// nodeStudyFiles with the on-disk scan cache; .nii and DICOM-folder series; resume across processes.
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { processScanInThread, StudyDataset, type ScanProcessor } from '../src/data/dataset.js';
import { StudyLoader, type StudyBatch } from '../src/data/loader.js';
import { synthConfig } from '../src/data/synth.js';
import { synthFiles } from '../src/data/synth-writer.js';
import { DiskScanCache, nodeStudyFiles, openStudyDataset, readManifestFile, type OpenDatasetOptions } from '../src/node/dataset.js';
import { buildDicom, axialSeries } from './helpers/dicom_builders.js';
import { taggedNifti, ToyTokenizer } from './helpers/dataset_builders.js';

let dir: string;
let data: string;
const SHAPE: [number, number, number] = [6, 12, 12];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hlip-dataset-'));
  data = join(dir, 'synth');
  const cfg = synthConfig({ kind: 'mri', studies: 6, heldOut: 2, seed: 4, scans: 2, shape: [8, 16, 16] });
  for await (const f of synthFiles(cfg)) {
    const p = join(data, f.path);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, f.data);
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function opts(over: Partial<OpenDatasetOptions> = {}): OpenDatasetOptions {
  return { manifest: join(data, 'train.json'), pipeline: { kind: 'mri' }, shape: SHAPE, numScans: 3, train: true, seed: 9, ...over };
}

/** A scan processor that counts the volumes it decodes. */
function counting(): { processor: ScanProcessor; reads: () => number } {
  let n = 0;
  return { processor: (job, files) => (n++, processScanInThread(job, files)), reads: () => n };
}

function fingerprint(b: StudyBatch): string {
  let h = 0;
  for (let i = 0; i < b.images.length; i++) h = (h * 31 + Math.round(b.images[i]! * 1e4)) | 0;
  return JSON.stringify([b.epoch, b.position, b.studyIds, b.scans, b.reports, Array.from(b.ids), b.shape, h]);
}

describe('StudyDataset on files', () => {
  it('reads the synth manifest and volumes into [B, S, D, H, W] batches', async () => {
    const ds = await openStudyDataset(opts());
    expect(ds.length).toBe(4);
    const loader = new StudyLoader(ds, { batchSize: 2, tokenizer: new ToyTokenizer(24) });
    const batches: StudyBatch[] = [];
    for await (const b of loader.epochBatches()) batches.push(b);
    expect(batches.length).toBe(2);
    for (const b of batches) {
      expect(b.shape).toEqual([2, 3, ...SHAPE]);
      expect(b.images.length).toBe(2 * 3 * 6 * 12 * 12);
      expect(b.ids.length).toBe(2 * 24);
      for (const r of b.reports) expect(r.startsWith('This MRI study shows: ')).toBe(true);
      for (const s of b.scans) for (const n of s) expect(['AX_T1', 'AX_T2']).toContain(n);
    }
    expect(new Set(batches.flatMap((b) => b.studyIds)).size).toBe(4);
  });

  it('later epochs and later runs do not decode NIfTI again (memory, then disk cache)', async () => {
    const cacheDir = join(dir, 'cache-a');
    const { processor, reads } = counting();
    const ds = await openStudyDataset(opts({ cacheDir, processor }));
    const loader = new StudyLoader(ds, { batchSize: 2, tokenizer: new ToyTokenizer(), prefetch: 1 });
    const epoch0: string[] = [];
    for await (const b of loader.epochBatches()) epoch0.push(fingerprint(b));
    expect(reads()).toBe(8); // 4 studies × 2 series, each decoded once although sampled 3 times
    for await (const b of loader.epochBatches()) expect(b.epoch).toBe(1);
    expect(reads()).toBe(8);
    expect(ds.stats.memoryHits).toBeGreaterThanOrEqual(8);
    expect((await readdir(cacheDir)).filter((f) => f.endsWith('.scan')).length).toBe(8);
    // A new process: memory is empty, the disk cache answers, batches are identical.
    const c2 = counting();
    const ds2 = await openStudyDataset(opts({ cacheDir, processor: c2.processor }));
    const reads2 = c2.reads;
    const loader2 = new StudyLoader(ds2, { batchSize: 2, tokenizer: new ToyTokenizer(), prefetch: 1 });
    const again: string[] = [];
    for await (const b of loader2.epochBatches()) again.push(fingerprint(b));
    expect(again).toEqual(epoch0);
    expect(reads2()).toBe(0);
    expect(ds2.stats.persistentHits).toBe(8);
  });

  it('a changed file or a damaged cache file is decoded again', async () => {
    const cacheDir = join(dir, 'cache-b');
    const ds = await openStudyDataset(opts({ cacheDir, train: false }));
    const ref = await ds.get(0);
    const cache = new DiskScanCache(cacheDir);
    const c2 = counting();
    // Damage every cache file: reads as a miss, is deleted and rewritten.
    for (const f of await readdir(cacheDir)) await writeFile(join(cacheDir, f), new Uint8Array([1, 2, 3]));
    const ds2 = new StudyDataset({ manifest: await readManifestFile(join(data, 'train.json')), files: nodeStudyFiles(data), persistentCache: cache, pipeline: { kind: 'mri' }, shape: SHAPE, numScans: 3, train: false, seed: 9, processor: c2.processor });
    const reads2 = c2.reads;
    const it = await ds2.get(0);
    expect(reads2()).toBe(2);
    expect(cache.misses).toBe(2);
    expect(Array.from(it.images)).toEqual(Array.from(ref.images));
    // Touching a volume changes its stamp, hence its key.
    const t1 = join(data, ref.studyId, 'AX_T1.nii.gz');
    await utimes(t1, new Date(), new Date(Date.now() + 5000));
    const c3 = counting();
    const ds3 = await openStudyDataset(opts({ cacheDir, train: false, processor: c3.processor }));
    const reads3 = c3.reads;
    await ds3.get(0);
    expect(reads3()).toBe(1);
  });

  it('resumes in a new dataset and loader with the same batches', async () => {
    const mk = async (prefetch: number) => new StudyLoader(await openStudyDataset(opts({ cacheDir: join(dir, 'cache-c') })), { batchSize: 2, tokenizer: new ToyTokenizer(), prefetch });
    const full = await mk(0);
    const ref: string[] = [];
    for (let i = 0; i < 5; i++) ref.push(fingerprint(await full.next()));
    const first = await mk(2);
    for (let i = 0; i < 3; i++) expect(fingerprint(await first.next())).toBe(ref[i]);
    const state = JSON.stringify(first.state());
    const second = await mk(2);
    second.restore(JSON.parse(state));
    for (let i = 3; i < 5; i++) expect(fingerprint(await second.next())).toBe(ref[i]);
  });
});

describe('series layouts and errors', () => {
  it('reads <study>/<series>.nii and a DICOM folder <study>/<series>/', async () => {
    const root = join(dir, 'mixed');
    await mkdir(join(root, 'P1', 'CT_SERIES'), { recursive: true });
    await writeFile(join(root, 'P1', 'T1.nii'), await taggedNifti(1, [3, 4, 5], false));
    const slices = axialSeries(4, { rows: 6, columns: 5, dz: 3, pixelSpacing: [1, 1], f: (k) => 100 * k - 1000 });
    for (const [k, s] of slices.entries()) await writeFile(join(root, 'P1', 'CT_SERIES', `im${k}.dcm`), buildDicom(s));
    await writeFile(join(root, 'P1', 'CT_SERIES', 'README.txt'), 'not dicom');
    await writeFile(join(root, 'm.json'), JSON.stringify({ P1: { series: { T1: { num_slices: 3, view: 'axial' }, CT_SERIES: { num_slices: 4, view: 'axial' } }, report: ['Fine.'] } }));
    const ds = await openStudyDataset({ manifest: join(root, 'm.json'), pipeline: { kind: 'ct', targetSpacing: null, window: [-1000, 0] }, shape: [4, 6, 6], numScans: 2, train: false, seed: 0 });
    expect(ds.scanPlan(0)).toEqual(['T1', 'CT_SERIES']);
    const it = await ds.get(0);
    expect(it.shape).toEqual([2, 4, 6, 6]);
    expect(it.report).toBe('This CT study shows: Fine.');
    // The CT scan: HU −1000 + 100·k windowed to [0, 1] (slices ordered along the normal), normalised.
    const per = 4 * 6 * 6;
    const centre = (k: number) => it.images[per + k * 36 + 2 * 6 + 2]!;
    const norm = (x: number) => (x - 0.449) / 0.226;
    const seen = [0, 1, 2, 3].map(centre).sort((a, b) => a - b);
    expect(seen.map((v) => Math.round(v * 1e4) / 1e4)).toEqual([0, 0.1, 0.2, 0.3].map((x) => Math.round(norm(x) * 1e4) / 1e4));
  });

  it('a bad manifest file or a missing series is a FormatError naming the file and study', async () => {
    const root = join(dir, 'bad');
    await mkdir(join(root, 'S1'), { recursive: true });
    await writeFile(join(root, 'broken.json'), '{"S1": {"series": {"T1": {}}, "report": "text"}}');
    const e = await readManifestFile(join(root, 'broken.json')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect((e as FormatError).message).toBe(`${join(root, 'broken.json')}: study 'S1': "report" must be a list of sentences, got string`);
    await writeFile(join(root, 'ok.json'), '{"S1": {"series": {"T1": {}}, "report": ["x"]}}');
    const ds = await openStudyDataset({ manifest: join(root, 'ok.json'), pipeline: { kind: 'mri' }, shape: SHAPE, numScans: 1, train: false });
    await expect(ds.get(0)).rejects.toThrow(/study 'S1': no volume for series 'T1' \(tried S1\/T1\.nii\.gz, S1\/T1\.nii, S1\/T1\/\)/);
    await expect(readManifestFile(join(root, 'none.json'))).rejects.toThrow(/cannot read manifest/);
  });
});
