// Dataset layer, browser-safe parts (run in Node and Chromium): manifest parsing and errors, series
// resolution, report text, scan sampling, the scan cache, StudyDataset over in-memory files and the
// batch loader (shapes, drop-last, resume, prefetch).
import { describe, expect, it } from 'vitest';
import { FormatError, HlipError, ShapeError } from '../src/errors.js';
import { sampleScans, StudyDataset, type StudyDatasetOptions } from '../src/data/dataset.js';
import { StudyLoader, type StudyBatch } from '../src/data/loader.js';
import { parseManifest, resolveSeries, type Manifest, type StudyFiles } from '../src/data/manifest.js';
import { DataRng } from '../src/data/random.js';
import { defaultReportPrefix, reportText, sentenceText } from '../src/data/report.js';
import { decodeCachedScan, encodeCachedScan, MemoryScanCache, scanKey, toCached, fromCached } from '../src/data/scan-cache.js';
import { mapStudyFiles } from '../src/data/study-files.js';
import { synthConfig } from '../src/data/synth.js';
import { synthFiles } from '../src/data/synth-writer.js';
import { readProjectFile } from './helpers/golden.js';
import { taggedNifti, ToyTokenizer } from './helpers/dataset_builders.js';

function formatError(f: () => unknown): FormatError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return e as FormatError;
  }
  throw new Error('expected a FormatError');
}

describe('manifest', () => {
  it('parses the reference example (brainmri220k__example.json)', async () => {
    const bytes = await readProjectFile('../shared/data/brainmri220k__example.json');
    expect(bytes).not.toBeNull();
    const m = parseManifest(new TextDecoder().decode(bytes!), 'example.json');
    expect(m.studies.map((s) => s.id)).toEqual(['BRAIN_UM_EB574511', 'BRAIN_UM_911A96A9']);
    expect(m.studies[0]!.series).toEqual([
      { name: 'AX_SSh_TSE_CLEAR', numSlices: 30, view: 'axial' },
      { name: 'SAG_SSh_TSE_CLEAR', numSlices: 25, view: 'sagittal' },
    ]);
    expect(m.studies[1]!.series.length).toBe(6);
    expect(m.studies[0]!.reportLength).toBe(18);
    expect(m.studies[0]!.report[0]).toMatch(/^Chiari II malformation/);
  });

  it('names the file and the study in every error', () => {
    const ok = { series: { T1: { num_slices: 3, view: 'axial' } }, report: ['A.'] };
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [[1, 2], /must be a JSON object.*an array/],
      [{}, /holds no study/],
      [{ S1: ok, S2: 5 }, /study 'S2': entry must be an object/],
      [{ S1: { report: ['x'] } }, /study 'S1': "series" must be an object/],
      [{ S1: { series: {}, report: ['x'] } }, /study 'S1': "series" is empty/],
      [{ S1: { series: { T1: 'x' }, report: ['x'] } }, /study 'S1': series 'T1' must be an object/],
      [{ S1: { series: { T1: { num_slices: 0 } }, report: ['x'] } }, /study 'S1': series 'T1': num_slices must be a positive integer/],
      [{ S1: { series: { T1: { view: 'oblique' } }, report: ['x'] } }, /study 'S1': series 'T1': view must be/],
      [{ S1: { series: { T1: {} } } }, /study 'S1': "report" must be a list/],
      [{ S1: { series: { T1: {} }, report: [] } }, /study 'S1': "report" is empty/],
      [{ S1: { series: { T1: {} }, report: ['a', 3] } }, /study 'S1': report sentence 1 must be a string/],
      [{ S1: { series: { T1: {} }, report: ['a'], report_length: -1 } }, /study 'S1': report_length/],
      [{ '..': ok }, /study '\.\.': study id '\.\.' cannot be used as a file name/],
      [{ S1: { series: { 'a/b': {} }, report: ['a'] } }, /study 'S1': series name 'a\/b' cannot be used/],
    ];
    for (const [input, re] of cases) {
      const e = formatError(() => parseManifest(typeof input === 'string' ? input : JSON.stringify(input), 'data/train.json'));
      expect(e.message).toMatch(/^data\/train\.json: /);
      expect(e.message).toMatch(re);
      expect(e.source).toBe('data/train.json');
    }
    // Fields it does not need are optional; the parsed object is accepted as well as text.
    expect(parseManifest({ S1: { series: { T1: {} }, report: ['a'] } }).studies[0]!.series).toEqual([{ name: 'T1' }]);
  });

  it('resolves .nii.gz, then .nii, then a DICOM folder, and lists what it tried otherwise', async () => {
    const files = mapStudyFiles([
      ['A/T1.nii.gz', new Uint8Array(4)], ['A/T1.nii', new Uint8Array(3)], ['A/T2.nii', new Uint8Array(3)],
      ['A/T3/0001.dcm', new Uint8Array(1)], ['./A/T4.nii.gz/x', new Uint8Array(1)],
    ], 'root');
    expect(await resolveSeries(files, 'A', 'T1')).toEqual({ path: 'A/T1.nii.gz', format: 'nifti', stamp: '4' });
    expect((await resolveSeries(files, 'A', 'T2')).path).toBe('A/T2.nii');
    expect(await resolveSeries(files, 'A', 'T3')).toEqual({ path: 'A/T3', format: 'dicom' });
    await expect(resolveSeries(files, 'A', 'T4')).rejects.toThrow(/root: study 'A': no volume for series 'T4' \(tried A\/T4\.nii\.gz, A\/T4\.nii, A\/T4\/\)/);
    await expect(resolveSeries(files, 'B', 'T1')).rejects.toBeInstanceOf(FormatError);
  });
});

describe('report text', () => {
  const sentences = ['One.', 'Two.', 'Three.', 'Four.', 'Five.'];
  it('is the prefix plus the sentences in order at eval', () => {
    expect(defaultReportPrefix('mri')).toBe('This MRI study shows: ');
    expect(defaultReportPrefix('ct')).toBe('This CT study shows: ');
    expect(reportText(sentences, 'This MRI study shows: ')).toBe('This MRI study shows: One. Two. Three. Four. Five.');
  });

  it('shuffles deterministically per (seed, epoch, index) at train time', () => {
    const t = (seed: number, epoch: number, index: number) => reportText(sentences, 'P: ', new DataRng(seed, 'report', epoch, index));
    expect(t(3, 1, 2)).toBe(t(3, 1, 2));
    const texts = new Set<string>();
    for (let e = 0; e < 12; e++) texts.add(t(3, e, 2));
    expect(texts.size).toBeGreaterThan(5); // 120 orders: epochs differ
    for (const x of texts) expect(x.slice(3).split(' ').sort()).toEqual([...sentences].sort());
    expect(t(4, 1, 2) === t(3, 1, 2) && t(3, 1, 3) === t(3, 1, 2) && t(3, 2, 2) === t(3, 1, 2)).toBe(false);
    expect(sentences).toEqual(['One.', 'Two.', 'Three.', 'Four.', 'Five.']); // input untouched
  });

  it("'sentence' mode: one random sentence per (seed, epoch, index) at train, the first at eval", () => {
    expect(sentenceText(sentences, 'P: ')).toBe('P: One.');
    expect(sentenceText([], 'P: ')).toBe('P:');
    const t = (epoch: number, index: number) => sentenceText(sentences, 'P: ', new DataRng(3, 'sentence', epoch, index));
    expect(t(1, 2)).toBe(t(1, 2));
    const seen = new Set<string>();
    for (let e = 0; e < 40; e++) seen.add(t(e, 2));
    expect([...seen].sort()).toEqual(sentences.map((x) => `P: ${x}`).sort()); // every sentence drawn, nothing else
  });
});

describe('scan sampling (reference rules)', () => {
  it('2 scans → 5: shuffled list repeated and truncated at train, order kept at eval', () => {
    for (let i = 0; i < 6; i++) {
      const s = sampleScans(['a', 'b'], 5, new DataRng(1, 'scans', 0, i));
      expect(s.length).toBe(5);
      // list * 3 then [:5]: the shuffled pair repeats
      expect(s).toEqual([s[0], s[1], s[0], s[1], s[0]]);
      expect(new Set(s)).toEqual(new Set(['a', 'b']));
    }
    const firsts = new Set(Array.from({ length: 16 }, (_, i) => sampleScans(['a', 'b'], 5, new DataRng(1, 'scans', 0, i))[0]));
    expect(firsts.size).toBe(2);
    expect(sampleScans(['a', 'b'], 5)).toEqual(['a', 'b', 'a', 'b', 'a']);
    expect(sampleScans(['a', 'b'], 5, null, 'reference')).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('9 scans → 4: four distinct random scans at train, the first four at eval (all nine in reference mode)', () => {
    const nine = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8'];
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const s = sampleScans(nine, 4, new DataRng(5, 'scans', 2, i));
      expect(s.length).toBe(4);
      expect(new Set(s).size).toBe(4);
      s.forEach((x) => seen.add(x));
      expect(sampleScans(nine, 4, new DataRng(5, 'scans', 2, i))).toEqual(s);
    }
    expect(seen.size).toBeGreaterThan(6);
    expect(sampleScans(nine, 4)).toEqual(['s0', 's1', 's2', 's3']);
    expect(sampleScans(nine, 4, null, 'reference')).toEqual(nine);
    expect(nine[0]).toBe('s0');
    expect(() => sampleScans(nine, 0)).toThrow(HlipError);
  });
});

describe('scan cache', () => {
  it('round-trips f32 and f16 through the stored format; another key reads as a miss', () => {
    const key = scanKey({ path: 'A/T1.nii.gz', opts: { b: 1, a: 2 } });
    expect(scanKey({ opts: { a: 2, b: 1 }, path: 'A/T1.nii.gz' })).toEqual(key); // key order does not matter
    expect(key.hash).toMatch(/^[0-9a-f]{16}$/);
    const values = Float32Array.from({ length: 24 }, (_, i) => (i - 7) / 3);
    for (const dtype of ['f32', 'f16'] as const) {
      const c = toCached(values, [2, 3, 4], dtype);
      const bytes = encodeCachedScan(key, c);
      const back = decodeCachedScan(bytes, key, 'x.scan')!;
      expect(back.shape).toEqual([2, 3, 4]);
      expect(Array.from(fromCached(back))).toEqual(Array.from(fromCached(c)));
      const err = Math.max(...Array.from(fromCached(back)).map((v, i) => Math.abs(v - values[i]!)));
      expect(err).toBeLessThanOrEqual(dtype === 'f32' ? 0 : 2e-3);
      expect(decodeCachedScan(bytes, scanKey({ other: 1 }), 'x.scan')).toBeNull();
      expect(() => decodeCachedScan(bytes.subarray(0, bytes.length - 2), key, 'x.scan')).toThrow(/x\.scan: truncated/);
    }
  });

  it('memory cache evicts the least recently used scan beyond its byte budget', async () => {
    const cache = new MemoryScanCache(3 * 24 * 4);
    const put = (i: number) => cache.set(scanKey({ i }), toCached(new Float32Array(24).fill(i), [2, 3, 4], 'f32'));
    await put(0); await put(1); await put(2);
    expect(await cache.get(scanKey({ i: 0 }))).not.toBeNull(); // 0 is now the most recent
    await put(3);
    expect(await cache.get(scanKey({ i: 1 }))).toBeNull();
    expect(await cache.get(scanKey({ i: 0 }))).not.toBeNull();
    expect(cache.bytes).toBe(3 * 24 * 4);
  });
});

// A study with 9 series, one with 2, one with 1: voxels tell which series and slice they are.
const SHAPE: [number, number, number] = [3, 4, 5];
const NAMES = (n: number) => Array.from({ length: n }, (_, i) => `S${i}`);
const COUNTS = [9, 2, 1, 3, 2];

async function tinyData(): Promise<{ manifest: Manifest; files: StudyFiles; reads: () => number }> {
  const entries: [string, Uint8Array][] = [];
  const json: Record<string, unknown> = {};
  for (let st = 0; st < COUNTS.length; st++) {
    const id = `ST${st}`;
    const series: Record<string, unknown> = {};
    for (const [s, name] of NAMES(COUNTS[st]!).entries()) {
      series[name] = { num_slices: SHAPE[0], view: 'axial' };
      entries.push([`${id}/${name}${s % 2 ? '.nii' : '.nii.gz'}`, await taggedNifti(s, SHAPE, s % 2 === 0)]);
    }
    json[id] = { series, report: [`Study ${st} first.`, `Second of ${st}.`, 'Third sentence here.'] };
  }
  const inner = mapStudyFiles(entries, 'mem');
  let n = 0;
  const files: StudyFiles = { name: inner.name, stat: (p) => inner.stat(p), readVolume: (p, o) => (n++, inner.readVolume(p, o)) };
  return { manifest: parseManifest(JSON.stringify(json), 'tiny.json'), files, reads: () => n };
}

function datasetOpts(d: Awaited<ReturnType<typeof tinyData>>, over: Partial<StudyDatasetOptions> = {}): StudyDatasetOptions {
  return { manifest: d.manifest, files: d.files, pipeline: { kind: 'prepared', mean: 0, std: 1 }, shape: SHAPE, numScans: 4, train: true, seed: 11, ...over };
}

/** Series index of each scan of an item, read back from its voxels (value = 10 · series + slice). */
function seriesOf(images: Float32Array, s: number): number[] {
  const per = SHAPE[0] * SHAPE[1] * SHAPE[2];
  return Array.from({ length: s }, (_, k) => {
    const v = images[k * per]!;
    for (let z = 0; z < SHAPE[0]; z++) expect(images[k * per + z * SHAPE[1] * SHAPE[2]]).toBe(v + z);
    return v / 10;
  });
}

describe('StudyDataset', () => {
  it('samples scans per (seed, epoch, index), assembles [S, D, H, W] and caches preprocessed scans', async () => {
    const d = await tinyData();
    const ds = new StudyDataset(datasetOpts(d));
    const total = COUNTS.reduce((a, b) => a + b, 0);
    const first: string[][] = [];
    for (let i = 0; i < ds.length; i++) {
      const it = await ds.get(i, 0);
      expect(it.shape).toEqual([4, ...SHAPE]);
      expect(it.images.length).toBe(4 * 60);
      expect(seriesOf(it.images, 4).map((s) => `S${s}`)).toEqual(it.scans);
      expect(it.scans).toEqual(ds.scanPlan(i, 0));
      expect(it.report.startsWith('This MRI study shows: ')).toBe(true);
      first.push(it.scans);
    }
    expect(new Set(first[0]).size).toBe(4); // 9 scans → 4 distinct
    expect(first[1]).toEqual([first[1]![0], first[1]![1], first[1]![0], first[1]![1]]); // 2 → 4, repeated
    expect(first[2]).toEqual(['S0', 'S0', 'S0', 'S0']);
    const readsAfterFirst = d.reads();
    expect(readsAfterFirst).toBeLessThanOrEqual(total);
    expect(ds.stats.volumeReads).toBe(readsAfterFirst);
    // Later epochs: other choices, no decoding of what was already read.
    for (let e = 1; e < 4; e++) for (let i = 0; i < ds.length; i++) await ds.get(i, e);
    const readsAfter = d.reads();
    for (let e = 1; e < 4; e++) for (let i = 0; i < ds.length; i++) await ds.get(i, e);
    expect(d.reads()).toBe(readsAfter); // second pass over the same epochs: all from the cache
    expect(ds.stats.memoryHits).toBeGreaterThan(0);
    // Deterministic: a fresh dataset gives the same items.
    const again = new StudyDataset(datasetOpts(d));
    const a = await again.get(0, 2), b = await ds.get(0, 2);
    expect(a.scans).toEqual(b.scans);
    expect(a.report).toBe(b.report);
    expect(Array.from(a.images)).toEqual(Array.from(b.images));
  });

  it('eval keeps the order and the sentences; reference mode keeps the repeated list whole', async () => {
    const d = await tinyData();
    const ev = new StudyDataset(datasetOpts(d, { train: false }));
    const it0 = await ev.get(0, 5);
    expect(it0.scans).toEqual(['S0', 'S1', 'S2', 'S3']);
    expect(seriesOf(it0.images, 4)).toEqual([0, 1, 2, 3]);
    expect(it0.report).toBe('This MRI study shows: Study 0 first. Second of 0. Third sentence here.');
    expect((await ev.get(1, 0)).scans).toEqual(['S0', 'S1', 'S0', 'S1']);
    const ref = new StudyDataset(datasetOpts(d, { train: false, evalScans: 'reference' }));
    expect((await ref.get(0)).shape).toEqual([9, ...SHAPE]);
    expect((await ref.get(1)).scans).toEqual(['S0', 'S1', 'S0', 'S1']);
    expect((await ref.get(2)).scans).toEqual(['S0', 'S0', 'S0', 'S0']);
    // Stacking studies with different scan counts is refused with a clear error.
    const loader = new StudyLoader(ref, { batchSize: 2, tokenizer: new ToyTokenizer(), prefetch: 0 });
    await expect(loader.next()).rejects.toBeInstanceOf(ShapeError);
  });

  it("text modes (reference --text-process-cfg): 'sentence', 'sentence and report', two texts for dual heads", async () => {
    const d = await tinyData();
    const report = ['Study 0 first.', 'Second of 0.', 'Third sentence here.'];
    const prefix = 'This MRI study shows: ';
    const plain = new StudyDataset(datasetOpts(d));
    const sent = new StudyDataset(datasetOpts(d, { textMode: 'sentence' }));
    const both = new StudyDataset(datasetOpts(d, { textMode: 'sentence and report' }));
    const drawn = new Set<string>();
    for (let e = 0; e < 16; e++) {
      const a = await sent.get(0, e);
      expect(report.map((x) => prefix + x)).toContain(a.report);
      expect(a.fullReport).toBeUndefined();
      drawn.add(a.report);
      const b = await both.get(0, e);
      expect(b.report).toBe(a.report); // the same draw in both modes
      expect(b.fullReport).toBe((await plain.get(0, e)).report); // the shuffled report of 'report' mode
    }
    expect(drawn.size).toBe(3);
    // Eval: the first sentence; the report in manifest order.
    const ev = await new StudyDataset(datasetOpts(d, { train: false, textMode: 'sentence and report' })).get(0, 4);
    expect(ev.report).toBe(prefix + report[0]);
    expect(ev.fullReport).toBe(prefix + report.join(' '));
    // A dual-head model in 'report' mode gets the same text twice, as the reference feeds both heads.
    const two = await new StudyDataset(datasetOpts(d, { twoTexts: true })).get(1, 3);
    expect(two.fullReport).toBe(two.report);
    // The loader tokenises the second text into reportIds [B, T].
    const tok = new ToyTokenizer(12);
    const batch = await new StudyLoader(both, { batchSize: 2, tokenizer: tok }).next();
    expect(batch.reportIds?.length).toBe(2 * 12);
    const items = await Promise.all(batch.indices.map((i) => both.get(i, batch.epoch)));
    items.forEach((it, r) => {
      const want = tok.encode(it.fullReport!).slice(0, 12);
      expect(Array.from(batch.reportIds!.subarray(r * 12, r * 12 + want.length))).toEqual(want);
    });
    expect((await new StudyLoader(plain, { batchSize: 2, tokenizer: tok }).next()).reportIds).toBeUndefined();
  });

  it('f16 cache rounds the first load the same way as cached loads', async () => {
    const d = await tinyData();
    const ds = new StudyDataset(datasetOpts(d, { pipeline: { kind: 'prepared', scale: 1 / 3, mean: 0.1, std: 0.7 }, cacheDType: 'f16' }));
    const a = await ds.get(3, 0);
    const reads = d.reads();
    const b = await ds.get(3, 0);
    expect(d.reads()).toBe(reads);
    expect(Array.from(b.images)).toEqual(Array.from(a.images));
  });
});

function fingerprint(b: StudyBatch): string {
  let h = 0;
  for (let i = 0; i < b.images.length; i++) h = (h * 31 + Math.round(b.images[i]! * 1000)) | 0;
  return JSON.stringify([b.epoch, b.position, b.studyIds, b.reports, Array.from(b.ids), Array.from(b.lengths), b.shape, h]);
}

describe('StudyLoader', () => {
  it('batches [B, S, D, H, W] images and [B, T] ids, drops the last partial batch at train time', async () => {
    const d = await tinyData();
    const tok = new ToyTokenizer(12);
    const loader = new StudyLoader(new StudyDataset(datasetOpts(d)), { batchSize: 2, tokenizer: tok });
    expect(loader.batchesPerEpoch).toBe(2); // 5 studies, drop_last
    const seen: number[][] = [];
    for await (const b of loader.epochBatches()) {
      expect(b.shape).toEqual([2, 4, ...SHAPE]);
      expect(b.images.length).toBe(2 * 4 * 60);
      expect(b.tokens.shape).toEqual([2, 12]);
      expect(b.ids).toBe(b.tokens.ids);
      for (let r = 0; r < 2; r++) {
        const want = tok.encode(b.reports[r]!);
        expect(b.lengths[r]).toBe(Math.min(want.length, 12));
        expect(Array.from(b.ids.subarray(r * 12, r * 12 + b.lengths[r]!))).toEqual(want.slice(0, 12));
        expect(Array.from(b.ids.subarray(r * 12 + b.lengths[r]!, (r + 1) * 12)).every((v) => v === 0)).toBe(true);
        expect(b.studyIds[r]).toBe(`ST${b.indices[r]}`);
      }
      seen.push(b.indices);
    }
    expect(loader.epoch).toBe(1);
    expect(new Set(seen.flat()).size).toBe(4);
    // Eval loader: manifest order, the partial batch kept.
    const ev = new StudyLoader(new StudyDataset(datasetOpts(d, { train: false })), { batchSize: 2, tokenizer: tok });
    const eb: StudyBatch[] = [];
    for await (const b of ev.epochBatches()) eb.push(b);
    expect(eb.map((b) => b.indices)).toEqual([[0, 1], [2, 3], [4]]);
    expect(eb[2]!.shape).toEqual([1, 4, ...SHAPE]);
  });

  it('shuffles each epoch differently, deterministically', async () => {
    const d = await tinyData();
    const mk = () => new StudyLoader(new StudyDataset(datasetOpts(d)), { batchSize: 1, tokenizer: new ToyTokenizer() });
    const a = mk(), b = mk();
    const orders = [0, 1, 2, 3].map((e) => Array.from(a.order(e)));
    expect([0, 1, 2, 3].map((e) => Array.from(b.order(e)))).toEqual(orders);
    expect(new Set(orders.map((o) => o.join())).size).toBeGreaterThan(1);
    for (const o of orders) expect([...o].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('a restored state continues with the same batches; prefetching does not change them', async () => {
    const d = await tinyData();
    const mk = (prefetch: number) => new StudyLoader(new StudyDataset(datasetOpts(d)), { batchSize: 2, tokenizer: new ToyTokenizer(), prefetch });
    const plain = mk(0);
    const ref: string[] = [];
    for (let i = 0; i < 7; i++) ref.push(fingerprint(await plain.next()));
    expect(new Set(ref).size).toBe(7);
    const ahead = mk(3);
    for (let i = 0; i < 7; i++) expect(fingerprint(await ahead.next())).toBe(ref[i]);
    // Stop after 3 batches (mid epoch 1), save, resume in a new loader over a new dataset.
    const run = mk(2);
    for (let i = 0; i < 3; i++) await run.next();
    const saved = JSON.parse(JSON.stringify(run.state()));
    expect(saved).toMatchObject({ epoch: 1, position: 1 });
    const resumed = mk(2);
    resumed.restore(saved);
    for (let i = 3; i < 7; i++) expect(fingerprint(await resumed.next())).toBe(ref[i]);
    // Restoring an earlier state on a running loader drops its prefetched batches.
    run.restore({ ...saved, epoch: 0, position: 0 });
    expect(fingerprint(await run.next())).toBe(ref[0]);
    expect(() => resumed.restore({ ...saved, batchSize: 3 })).toThrow(/batchSize/);
    expect(() => resumed.restore({ ...saved, position: 9 })).toThrow(/out of range/);
  });
});

describe('synthetic MRI in memory through the MRI pipeline', () => {
  it('reads generated .nii.gz studies into normalised [S, D, H, W] inputs', async () => {
    const cfg = synthConfig({ kind: 'mri', studies: 3, heldOut: 1, seed: 2, scans: 2, shape: [8, 16, 16] });
    const entries: [string, Uint8Array][] = [];
    for await (const f of synthFiles(cfg)) entries.push([f.path, f.data]);
    const manifestBytes = entries.find(([p]) => p === 'train.json')![1];
    const ds = new StudyDataset({
      manifest: parseManifest(new TextDecoder().decode(manifestBytes), 'train.json'), files: mapStudyFiles(entries, 'synth'),
      pipeline: { kind: 'mri' }, shape: [6, 12, 12], numScans: 3, train: true, seed: 1,
    });
    expect(ds.length).toBe(2);
    const it = await ds.get(1, 0);
    expect(it.shape).toEqual([3, 6, 12, 12]);
    expect(new Set(it.scans)).toEqual(new Set(['AX_T1', 'AX_T2']));
    let mn = Infinity, mx = -Infinity;
    for (const v of it.images) {
      expect(Number.isFinite(v)).toBe(true);
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    // [0, 1] scans normalised with mean 0.449, std 0.226 span about [−1.99, 2.44].
    expect(mn).toBeGreaterThanOrEqual(-0.449 / 0.226 - 1e-4);
    expect(mx).toBeLessThanOrEqual(0.551 / 0.226 + 1e-4);
    expect(mx - mn).toBeGreaterThan(2);
  });
});
