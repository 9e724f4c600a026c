// Benchmark layout readers on tiny synthetic copies of each public layout (files written here: NIfTI
// through writeNifti, DICOM through the test DICOM writer, .npz through writeNpz), plus our manifest
// layout: label ids map to the right files, scans read back as the volumes written, missing studies are
// typed errors naming them (or skipped and counted), and every case key matches its label row the way
// the score-file matcher does.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CT_RATE_CLASSES, MR_RATE_CLASSES, PUB_BRAIN_5_HEADERS, RAD_CHESTCT_PROMPT_CLASSES_2025, RSNA_HEADERS, CQ500_HEADERS,
  caseIdCandidates, parseLabels, type BenchmarkName, type LabelTable,
} from '../src/eval/benchmarks.js';
import {
  MissingStudiesError, cq500Candidates, ctRateFolders, mapDataTree, parseCtRateMetadata, pubBrain5Candidates, readBenchmarkLayout, readNpy, readScan,
  writeNpy, writeNpz, type BenchStudy, type DataTree, type LayoutResult,
} from '../src/eval/layouts/index.js';
import { parseManifest } from '../src/data/manifest.js';
import { writeNifti } from '../src/io/nifti.js';
import { nodeDataTree } from '../src/node/data-tree.js';
import { axialSeries, buildDicom } from './helpers/dicom_builders.js';
import { rpiVolume } from './helpers/dataset_builders.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hlip-layouts-'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function put(base: string, rel: string, bytes: Uint8Array | string): Promise<void> {
  const p = join(base, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, bytes);
}

/** NIfTI bytes whose voxels are `tag` + slice index (shape [D, H, W]). */
const nifti = (tag: number, shape: [number, number, number] = [3, 4, 5], gzip = true) => writeNifti(rpiVolume(shape, (k) => tag + k), { gzip, datatype: 'float32' });

/** A label CSV: id column, then the classes (0/1 by a fixed pattern). */
function labelCsv(idCol: string, classes: readonly string[], ids: readonly string[]): string {
  return [[idCol, ...classes].join(','), ...ids.map((id, r) => [id, ...classes.map((_, c) => ((r + c) % 3 === 0 ? 1 : 0))].join(','))].join('\n') + '\n';
}

/** A DICOM slice series (explicit VR LE) with a StudyInstanceUID inserted before the SeriesInstanceUID. */
function dicomSeries(n: number, seriesUID: string, opts: { study?: string; base?: number } = {}): Uint8Array[] {
  return axialSeries(n, { seriesUID, rows: 4, columns: 5, f: (k, j, i) => (opts.base ?? 0) + 100 * k + 10 * j + i }).map((s) => {
    const b = buildDicom(s);
    return opts.study ? withStudyUid(b, opts.study) : b;
  });
}

function withStudyUid(b: Uint8Array, uid: string): Uint8Array {
  const v = uid.length % 2 ? uid + '\0' : uid;
  const el = [0x20, 0x00, 0x0d, 0x00, 0x55, 0x49, v.length & 255, v.length >> 8, ...[...v].map((c) => c.charCodeAt(0))];
  for (let i = 132; i < b.length - 6; i++) {
    if (b[i] === 0x20 && b[i + 1] === 0 && b[i + 2] === 0x0e && b[i + 3] === 0 && b[i + 4] === 0x55 && b[i + 5] === 0x49) return Uint8Array.from([...b.subarray(0, i), ...el, ...b.subarray(i)]);
  }
  throw new Error('no SeriesInstanceUID element');
}

async function layoutOf(bench: BenchmarkName, dir: string, labels: LabelTable, opts: Parameters<typeof readBenchmarkLayout>[3] = {}): Promise<LayoutResult> {
  return readBenchmarkLayout(bench, nodeDataTree(dir), labels, opts);
}

const paths = (s: BenchStudy) => s.scans.map((x) => `${x.format}:${x.path}`);

/** Every case key leads back to its own label row through the score-file id rules. */
function expectKeysMatchRows(r: LayoutResult, labels: LabelTable) {
  for (const s of r.studies) expect(caseIdCandidates(s.key).map((c) => labels.ids.indexOf(c)).find((i) => i >= 0), s.key).toBe(s.row);
}

describe('CT-RATE public layout', () => {
  const dir = () => join(root, 'ctrate');
  const ids = ['valid_1_a_1.nii.gz', 'valid_1_a_2.nii.gz', 'valid_12_b_1.nii.gz'];
  let labels: LabelTable;
  beforeAll(async () => {
    // The Hugging Face layout: dataset/valid_fixed/<split>/<split_a>/<name>.nii.gz; labels beside it.
    await put(dir(), 'dataset/valid_fixed/valid_1/valid_1_a/valid_1_a_1.nii.gz', await nifti(100));
    await put(dir(), 'dataset/valid_fixed/valid_1/valid_1_a/valid_1_a_2.nii.gz', await nifti(200));
    await put(dir(), 'dataset/valid_fixed/valid_12/valid_12_b/valid_12_b_1.nii', await nifti(300, [3, 4, 5], false));
    labels = parseLabels('ct-rate', labelCsv('VolumeName', ['Medical material', ...CT_RATE_CLASSES], ids), 'valid_labels.csv');
  });

  it('maps VolumeName to <split>/<split_a>/<name>.nii[.gz] below valid_fixed and reads the volume', async () => {
    expect(ctRateFolders('valid_12_b_1')).toEqual(['valid_12', 'valid_12_b']);
    const r = await layoutOf('ct-rate', dir(), labels);
    expect(r.layout).toBe('ct-rate');
    expect(r.studies.map(paths)).toEqual([
      ['nifti:dataset/valid_fixed/valid_1/valid_1_a/valid_1_a_1.nii.gz'],
      ['nifti:dataset/valid_fixed/valid_1/valid_1_a/valid_1_a_2.nii.gz'],
      ['nifti:dataset/valid_fixed/valid_12/valid_12_b/valid_12_b_1.nii'],
    ]);
    expect(r.studies.map((s) => s.key)).toEqual(ids);
    expectKeysMatchRows(r, labels);
    const v = await readScan(nodeDataTree(dir()), r.studies[1]!.scans[0]!, { orientation: 'native' });
    expect(v.dims).toEqual([5, 4, 3]);
    expect(Array.from(v.data.subarray(0, 2))).toEqual([200, 200]);
    expect(v.data[4 * 5 * 2]).toBe(202); // slice k = 2
    // The root may also be the valid_fixed folder itself.
    const inner = await layoutOf('ct-rate', join(dir(), 'dataset/valid_fixed'), labels);
    expect(inner.studies[0]!.scans[0]!.path).toBe('valid_1/valid_1_a/valid_1_a_1.nii.gz');
  });

  it('a study without a file is a MissingStudiesError naming it; --skip-missing counts it', async () => {
    const more = parseLabels('ct-rate', labelCsv('VolumeName', CT_RATE_CLASSES, [...ids, 'valid_9_a_1.nii.gz']), 'valid_labels.csv');
    const e = await layoutOf('ct-rate', dir(), more).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingStudiesError);
    expect((e as MissingStudiesError).missing.map((m) => m.id)).toEqual(['valid_9_a_1']);
    expect((e as Error).message).toMatch(/1 of 4 labelled studies have no files here: 'valid_9_a_1' \(no NIfTI file; tried valid_9\/valid_9_a\/valid_9_a_1\.nii\.gz/);
    expect((e as Error).message).toContain(join(root, 'ctrate'));
    const r = await layoutOf('ct-rate', dir(), more, { skipMissing: true });
    expect(r.studies.length).toBe(3);
    expect(r.missing).toEqual([{ id: 'valid_9_a_1', reason: expect.stringContaining('no NIfTI file') }]);
    // A shard's rows only.
    const part = await layoutOf('ct-rate', dir(), more, { rows: [0, 2] });
    expect(part.studies.map((s) => s.row)).toEqual([0, 2]);
  });

  it('parses the metadata CSV the reference rescales with', () => {
    const m = parseCtRateMetadata('VolumeName,Manufacturer,RescaleIntercept,RescaleSlope,XYSpacing,ZSpacing\nvalid_1_a_1.nii.gz,X,-8192,1,"[0.75, 0.7]",1.5\n', 'meta.csv');
    expect(m.get('valid_1_a_1')).toEqual({ slope: 1, intercept: -8192, spacing: [0.75, 0.7, 1.5] });
    expect(() => parseCtRateMetadata('VolumeName,RescaleSlope\nx,1\n', 'meta.csv')).toThrow(/no 'RescaleIntercept' column/);
  });
});

describe('Rad-ChestCT public layout (.npz)', () => {
  const dir = () => join(root, 'radchest');
  const ids = ['tst001', 'tst002', 'tst003'];
  let labels: LabelTable;
  beforeAll(async () => {
    const D = 3, H = 4, W = 5;
    const hu = Array.from({ length: D * H * W }, (_, i) => i - 1000);
    await put(dir(), 'tst001.npz', writeNpz({ ct: writeNpy(hu, [D, H, W], '<i2') })); // flat, as on Zenodo
    await put(dir(), 'tst002/tst002.npz', writeNpz({ ct: writeNpy(hu.map((v) => v + 1), [D, H, W], '<f4') }));
    await put(dir(), 'tst003.nii.gz', await nifti(-500));
    labels = parseLabels('rad-chestct', labelCsv('NoteAcc_DEID', RAD_CHESTCT_PROMPT_CLASSES_2025, ids).replace(/,(\d)(?=,|\n)/g, ',$1.0'), 'rad_chestct_labels.csv');
  });

  it('finds <id>.npz flat or in its own folder (and NIfTI), and reads "ct" as HU at 0.8 mm', async () => {
    const r = await layoutOf('rad-chestct', dir(), labels);
    expect(r.studies.map(paths)).toEqual([['npz:tst001.npz'], ['npz:tst002/tst002.npz'], ['nifti:tst003.nii.gz']]);
    expectKeysMatchRows(r, labels);
    const tree = nodeDataTree(dir());
    const v = await readScan(tree, r.studies[0]!.scans[0]!, { orientation: 'native', npzSpacing: [0.8, 0.8, 0.8] });
    expect(v.dims).toEqual([5, 4, 3]); // [D, H, W] array → i = W
    expect(v.spacing).toEqual([0.8, 0.8, 0.8]);
    expect(v.data[0]).toBe(-1000);
    expect(v.data[59]).toBe(-941);
    const f = await readScan(tree, r.studies[1]!.scans[0]!, { orientation: 'native' });
    expect(f.data[59]).toBe(-940);
  });

  it('npy headers: Fortran order, dtypes and damaged files', () => {
    const c = readNpy(writeNpy([1, 2, 3, 4, 5, 6], [2, 3]));
    expect(c.shape).toEqual([2, 3]);
    expect(Array.from(c.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const fortran = writeNpy([1, 4, 2, 5, 3, 6], [2, 3]);
    const text = new TextDecoder('latin1').decode(fortran).replace("'fortran_order': False", "'fortran_order': True ");
    const f = readNpy(Uint8Array.from(text, (ch) => ch.charCodeAt(0)));
    expect(Array.from(f.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => readNpy(new Uint8Array(20), 'x.npy')).toThrow(/x\.npy: not a \.npy file/);
    expect(() => readNpy(writeNpy([1, 2], [3]), 'y.npy')).toThrow(/runs past/);
  });
});

describe('Pub-Brain-5 public layout', () => {
  const dir = () => join(root, 'pb5');
  const keys = ['/data/pub_brain_5/brats23/BraTS-GLI-00001-000', '/data/pub_brain_5/open_bhb/sub-1', '/data/pub_brain_5/stroke/sub-strokecase0001'];
  let labels: LabelTable;
  beforeAll(async () => {
    const d = dir();
    // BraTS: sequences plus a segmentation (not a scan).
    for (const [i, s] of ['t1c', 't2f', 't2w'].entries()) await put(d, `brats23/BraTS-GLI-00001-000/BraTS-GLI-00001-000-${s}.nii.gz`, await nifti(10 * i));
    await put(d, 'brats23/BraTS-GLI-00001-000/BraTS-GLI-00001-000-seg.nii.gz', await nifti(99));
    // BIDS-like nesting, derivatives left out.
    await put(d, 'open_bhb/sub-1/anat/sub-1_T1w.nii.gz', await nifti(1));
    await put(d, 'stroke/sub-strokecase0001/ses-0001/dwi/sub-strokecase0001_dwi.nii.gz', await nifti(2));
    await put(d, 'stroke/sub-strokecase0001/ses-0001/anat/sub-strokecase0001_FLAIR.nii.gz', await nifti(3));
    await put(d, 'stroke/sub-strokecase0001/derivatives/sub-strokecase0001_msk.nii.gz', await nifti(4));
    await put(d, 'stroke/sub-strokecase0001/README.txt', 'not a scan');
    labels = parseLabels('pub-brain-5', labelCsv('study', PUB_BRAIN_5_HEADERS, keys), 'pub_brain_5.csv');
  });

  it('maps the study path to <source>/<study>/ and takes its sequences, not its masks', async () => {
    expect(pubBrain5Candidates('/data/pub_brain_5/nyu_mets/X')).toEqual(['nyu_mets/X', 'X']);
    expect(pubBrain5Candidates('nyu_mets/X')).toEqual(['nyu_mets/X', 'X']);
    const r = await layoutOf('pub-brain-5', dir(), labels);
    expect(r.studies.map(paths)).toEqual([
      ['t1c', 't2f', 't2w'].map((s) => `nifti:brats23/BraTS-GLI-00001-000/BraTS-GLI-00001-000-${s}.nii.gz`),
      ['nifti:open_bhb/sub-1/anat/sub-1_T1w.nii.gz'],
      ['nifti:stroke/sub-strokecase0001/ses-0001/anat/sub-strokecase0001_FLAIR.nii.gz', 'nifti:stroke/sub-strokecase0001/ses-0001/dwi/sub-strokecase0001_dwi.nii.gz'],
    ]);
    expect(r.studies.map((s) => s.key)).toEqual(keys); // the label file's paths (the 2025 metrics filter on them)
    expectKeysMatchRows(r, labels);
    const v = await readScan(nodeDataTree(dir()), r.studies[0]!.scans[2]!, {});
    expect(v.orientation).toBe('RPI');
    expect(v.data[0]).toBe(20);
  });
});

describe('MR-RATE layout', () => {
  const dir = () => join(root, 'mrrate');
  let labels: LabelTable;
  beforeAll(async () => {
    const d = dir();
    await put(d, '227OGWCQIR/flair-raw-sag/img.nii.gz', await nifti(5));
    for (const [k, b] of dicomSeries(3, '1.2.3.9', { base: 7 }).entries()) await put(d, `227OGWCQIR/t1w-raw-sag/IM${k}.dcm`, b);
    await put(d, 'A1/t2w-raw-axi.nii.gz', await nifti(6));
    labels = parseLabels('mr-rate', labelCsv('study_uid', MR_RATE_CLASSES, ['227OGWCQIR', 'A1', 'B2']), 'mr_rate_test.csv');
  });

  it('one scan per sub-folder (NIfTI or DICOM series) or NIfTI file; missing study folders skipped as the reference does', async () => {
    await expect(layoutOf('mr-rate', dir(), labels)).rejects.toThrow(/'B2' \(no study folder B2\/\)/);
    const r = await layoutOf('mr-rate', dir(), labels, { skipMissing: true });
    expect(r.studies.map(paths)).toEqual([['nifti:227OGWCQIR/flair-raw-sag/img.nii.gz', 'dicom:227OGWCQIR/t1w-raw-sag'], ['nifti:A1/t2w-raw-axi.nii.gz']]);
    expect(r.missing.map((m) => m.id)).toEqual(['B2']);
    expectKeysMatchRows(r, labels);
    const v = await readScan(nodeDataTree(dir()), r.studies[0]!.scans[1]!, {});
    expect([...v.dims].sort()).toEqual([3, 4, 5]);
    expect(v.modality).toBe('CT');
  });
});

describe('RSNA layouts', () => {
  const dir = () => join(root, 'rsna');
  let labels: LabelTable;
  beforeAll(async () => {
    const d = dir();
    // Reference layout: one case per series folder.
    for (const [s, uid] of ['ID_s1', 'ID_s2'].entries()) for (const [k, b] of dicomSeries(3, `1.2.${s}`, { base: 1000 * s }).entries()) await put(d, `RSNA_ID_aaa/${uid}/${k}.dcm`, b);
    // A study folder of slices.
    for (const [k, b] of dicomSeries(2, '1.3.1').entries()) await put(d, `ID_bbb/${k}.dcm`, b);
    // The Kaggle release: one flat folder of slices, two studies mixed.
    const flat = [...dicomSeries(3, '1.4.1', { study: 'ID_ccc' }), ...dicomSeries(2, '1.4.2', { study: 'ID_ddd' })];
    for (const [k, b] of flat.entries()) await put(d, `stage_2_train/ID_${String(9 - k).padStart(4, '0')}.dcm`, b);
    labels = parseLabels('rsna', labelCsv('study', RSNA_HEADERS, ['ID_aaa', 'ID_bbb', 'ID_ccc', 'ID_ddd']), 'rsna.csv');
  });

  it('series folders, a study folder of slices, and the flat slice folder grouped by StudyInstanceUID', async () => {
    let saved: unknown = null;
    const r = await layoutOf('rsna', dir(), labels, { rsna: { indexStore: { load: async () => null, save: async (i) => void (saved = i) } } });
    expect(r.studies.map((s) => [s.key, s.row])).toEqual([
      ['RSNA_ID_aaa/ID_s1', 0], ['RSNA_ID_aaa/ID_s2', 0], ['RSNA_ID_bbb', 1], ['RSNA_ID_ccc/1.4.1', 2], ['RSNA_ID_ddd/1.4.2', 3],
    ]);
    expectKeysMatchRows(r, labels);
    expect(r.studies[0]!.scans.map((s) => s.path)).toEqual(['RSNA_ID_aaa/ID_s1']);
    expect(r.studies[3]!.scans[0]!.files).toEqual(['stage_2_train/ID_0007.dcm', 'stage_2_train/ID_0008.dcm', 'stage_2_train/ID_0009.dcm']);
    expect(Object.keys(saved as object).sort()).toEqual(['ID_ccc', 'ID_ddd']);
    const tree = nodeDataTree(dir());
    const flat = await readScan(tree, r.studies[3]!.scans[0]!, {});
    expect([...flat.dims].sort()).toEqual([3, 4, 5]);
    const s2 = await readScan(tree, r.studies[1]!.scans[0]!, { orientation: 'native' });
    expect(Math.min(...s2.data)).toBe(1000);
  });
});

describe('CQ500 layouts', () => {
  const dir = () => join(root, 'cq500');
  let labels: LabelTable;
  beforeAll(async () => {
    const d = dir();
    // The qure.ai download: "CQ500CT1 CQ500CT1/Unknown Study/<series>/*.dcm".
    for (const [s, name] of ['CT 4cm', 'CT PLAIN THIN'].entries()) for (const [k, b] of dicomSeries(2, `2.${s}`).entries()) await put(d, `CQ500CT1 CQ500CT1/Unknown Study/${name}/CT00000${k}.dcm`, b);
    await put(d, 'CQ500CT2 CQ500CT2/Unknown Study/DICOMDIR', 'x');
    // The reference layout: <study>/<scan files>.
    await put(d, 'CQ500CT003/scan_a.nii.gz', await nifti(8));
    labels = parseLabels('cq500', labelCsv('study', [...CQ500_HEADERS, 'ChronicBleed'], ['CQ500CT001', 'CQ500CT002', 'CQ500CT003']), 'cq500.csv');
  });

  it('finds the release folder names and every series of a study', async () => {
    expect(cq500Candidates('CQ500CT001')).toEqual(['CQ500CT001', 'CQ500CT1 CQ500CT1', 'CQ500CT1', 'CQ500-CT-1']);
    const e = await layoutOf('cq500', dir(), labels).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingStudiesError);
    expect((e as Error).message).toMatch(/'CQ500CT002' \(no DICOM series or NIfTI file in CQ500CT2 CQ500CT2\)/);
    const r = await layoutOf('cq500', dir(), labels, { skipMissing: true });
    expect(r.studies.map(paths)).toEqual([
      ['dicom:CQ500CT1 CQ500CT1/Unknown Study/CT 4cm', 'dicom:CQ500CT1 CQ500CT1/Unknown Study/CT PLAIN THIN'],
      ['nifti:CQ500CT003/scan_a.nii.gz'],
    ]);
    expectKeysMatchRows(r, labels);
    const v = await readScan(nodeDataTree(dir()), r.studies[0]!.scans[1]!, {});
    expect(v.data.length).toBe(2 * 4 * 5);
  });
});

describe('manifest layout and in-memory trees', () => {
  it('maps label ids to manifest studies and their series files (browser DataTree)', async () => {
    const files: [string, Uint8Array][] = [
      ['s1/t1.nii.gz', await nifti(1)], ['s1/t2.nii', await nifti(2, [3, 4, 5], false)],
      ['s2/t1.nii.gz', await nifti(3)], ...dicomSeries(2, '5.5').map((b, k) => [`s2/dwi/${k}.dcm`, b] as [string, Uint8Array]),
    ];
    const tree: DataTree = mapDataTree(files, 'dropped');
    const manifest = parseManifest({ s1: { series: { t1: {}, t2: {} }, report: ['a'] }, s2: { series: { dwi: {}, t1: {} }, report: ['b'] }, s3: { series: { x: {} }, report: ['c'] } }, 'manifest.json');
    const labels = parseLabels('mr-rate', labelCsv('study_uid', MR_RATE_CLASSES, ['s2', 's1', 's3']), 'labels.csv');
    const r = await readBenchmarkLayout('mr-rate', tree, labels, { manifest, skipMissing: true });
    expect(r.layout).toBe('manifest');
    expect(r.studies.map(paths)).toEqual([['dicom:s2/dwi', 'nifti:s2/t1.nii.gz'], ['nifti:s1/t1.nii.gz', 'nifti:s1/t2.nii']]);
    expect(r.missing).toEqual([{ id: 's3', reason: expect.stringContaining("series 'x' has no file") }]);
    const v = await readScan(tree, r.studies[0]!.scans[0]!, {});
    expect(v.data.length).toBe(2 * 4 * 5);
    expect((await readScan(tree, r.studies[1]!.scans[1]!, {})).data[0]).toBe(2);
    expect(await tree.list('s2')).toEqual([{ name: 'dwi', kind: 'dir' }, { name: 't1.nii.gz', kind: 'file' }]);
  });
});
