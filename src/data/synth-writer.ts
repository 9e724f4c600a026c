// The synthetic benchmark as files (browser-safe: yields paths and bytes; src/cli/synth.ts writes them
// to disk). Layout, as the reference brain-MRI manifest (spec §5.5) and CT-RATE labels CSV:
//   <study_id>/<series>.nii.gz   NIfTI-1, RPI, CT int16 HU, MRI uint8 with scl_slope 1/255 (reads as [0, 1])
//   train.json, valid.json       {study_id: {series: {name: {num_slices, view}}, report_length, report: [...]}}
//   train_labels.csv, valid_labels.csv   VolumeName,<finding>... (VolumeName = study id), 0/1
//   prompts.json                 {finding: {positive, negative}}
//   difficulty.json              configuration, volume geometry, finding catalog, measured statistics, baselines
import { HlipError } from '../errors.js';
import { writeNifti } from '../io/nifti.js';
import type { Volume } from '../io/volume.js';
import { findingCatalog, generateStudy, reportPrefix, synthAffine, synthFov, synthPrompts, synthSeries, synthSpacing, type SynthConfig, type SynthScan, type SynthStudy } from './synth.js';
import { DifficultyAccumulator, type DifficultyReport } from './synth/stats.js';

export interface SynthFile {
  path: string;
  data: Uint8Array;
}

export interface SynthWriteOptions {
  /** Called after each study is generated (progress reporting). */
  onStudy?: (study: SynthStudy, done: number, total: number) => void;
}

export interface ManifestEntry {
  series: Record<string, { num_slices: number; view: 'axial' }>;
  report_length: number;
  report: string[];
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  if (typeof CompressionStream === 'undefined') throw new HlipError('io', 'this runtime has no CompressionStream for gzip output');
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** One scan as .nii.gz bytes: CT as int16 HU; MRI as uint8 0–255 with scl_slope 1/255. */
export async function encodeSynthScan(scan: SynthScan, kind: SynthConfig['kind'], source = scan.series): Promise<Uint8Array> {
  const [D, H, W] = scan.shape;
  const [sz, sy, sx] = scan.spacing;
  const mri = kind === 'mri';
  const data = mri ? scan.data.map((v) => Math.round(v * 255)) : scan.data;
  const vol: Volume = {
    data, dims: [W, H, D], spacing: [sx, sy, sz], affine: synthAffine(scan.shape, scan.spacing), orientation: 'RPI',
    source, frames: 1, frame: 0, affineSource: 'derived',
  };
  const bytes = await writeNifti(vol, { datatype: mri ? 'uint8' : 'int16', description: `hlip synth ${kind} ${scan.contrast}` });
  if (mri) new DataView(bytes.buffer, bytes.byteOffset).setFloat32(112, 1 / 255, true); // scl_slope: stored 0–255 reads as [0, 1]
  return gzip(bytes);
}

function csv(rows: string[][]): string {
  const cell = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return rows.map((r) => r.map(cell).join(',')).join('\n') + '\n';
}

export interface SynthSummary {
  train: number;
  heldOut: number;
  difficulty: DifficultyReport;
}

/**
 * Generate the data set and yield its files: each study's volumes as soon as it is generated (memory stays
 * at one study), then the manifests, label CSVs, prompts and difficulty.json. Returns a summary.
 */
export async function* synthFiles(cfg: SynthConfig, opts: SynthWriteOptions = {}): AsyncGenerator<SynthFile, SynthSummary> {
  const catalog = findingCatalog(cfg.kind, cfg.scans).filter((f) => cfg.findings.includes(f.name));
  const acc = new DifficultyAccumulator(cfg, Object.fromEntries(catalog.map((f) => [f.name, f.visibleIn])));
  const manifests: Record<'train' | 'valid', Record<string, ManifestEntry>> = { train: {}, valid: {} };
  const header = ['VolumeName', ...cfg.findings];
  const labels: Record<'train' | 'valid', string[][]> = { train: [header], valid: [header] };
  for (let i = 0; i < cfg.studies; i++) {
    const st = generateStudy(cfg, i);
    for (const sc of st.scans) yield { path: `${st.id}/${sc.series}.nii.gz`, data: await encodeSynthScan(sc, cfg.kind, `${st.id}/${sc.series}`) };
    const split = st.split === 'heldout' ? 'valid' : 'train';
    const series: ManifestEntry['series'] = {};
    for (const sc of st.scans) series[sc.series] = { num_slices: sc.shape[0], view: 'axial' };
    manifests[split][st.id] = { series, report_length: st.report.join(' ').split(/\s+/).length, report: st.report };
    labels[split].push([st.id, ...cfg.findings.map((f) => String(st.labels[f]))]);
    acc.add(st);
    opts.onStudy?.(st, i + 1, cfg.studies);
  }
  const enc = new TextEncoder();
  const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v, null, 2) + '\n');
  yield { path: 'train.json', data: json(manifests.train) };
  yield { path: 'valid.json', data: json(manifests.valid) };
  yield { path: 'train_labels.csv', data: enc.encode(csv(labels.train)) };
  yield { path: 'valid_labels.csv', data: enc.encode(csv(labels.valid)) };
  yield { path: 'prompts.json', data: json(synthPrompts(cfg)) };
  const difficulty = acc.report();
  yield { path: 'difficulty.json', data: json(difficultyDocument(cfg, difficulty)) };
  return { train: cfg.studies - cfg.heldOut, heldOut: cfg.heldOut, difficulty };
}

/** difficulty.json: what was generated and how hard it is, with the definitions of every number. */
export function difficultyDocument(cfg: SynthConfig, measured: DifficultyReport): Record<string, unknown> {
  const catalog = findingCatalog(cfg.kind, cfg.scans).filter((f) => cfg.findings.includes(f.name));
  const spacing = synthSpacing(cfg);
  return {
    generator: 'hlip-webgpu synthetic benchmark v1',
    config: cfg,
    volumes: {
      shape: cfg.shape,
      spacingMm: spacing,
      fieldOfViewMm: synthFov(cfg.kind),
      orientation: 'RPI (slice 0 superior, row 0 anterior, column 0 patient left); arrays are [D, H, W]',
      units: cfg.kind === 'ct' ? 'Hounsfield units, stored int16' : 'intensity in [0, 1], stored uint8 with scl_slope 1/255',
      series: synthSeries(cfg),
    },
    splits: { train: { manifest: 'train.json', labels: 'train_labels.csv', studies: cfg.studies - cfg.heldOut }, heldOut: { manifest: 'valid.json', labels: 'valid_labels.csv', studies: cfg.heldOut } },
    reportPrefix: reportPrefix(cfg.kind),
    findings: catalog.map((f) => ({ name: f.name, shape: f.shape, location: f.location, intensity: f.intensity, visibleIn: f.visibleIn, prompt: f.prompt })),
    definitions: {
      prevalence: 'fraction of all studies with the finding (independent Bernoulli draws, probability config.prevalence)',
      sizeMm: 'largest diameter for round lesions, diameter of the largest focus for multi-focal ones, layer thickness for effusions, growth of the organ semi-axis ×2 for enlargement findings, extent along z for emphysema',
      voxels: 'voxels whose lesion weight (partial volume) is ≥ 0.5, mean over the scans of a study; at least the strongest voxel',
      cnr: 'contrast-to-noise ratio per contrast: mean intensity change the finding causes inside its voxels (rendered minus the same study without it, noise-free, after gain/bias) divided by the scan noise σ; negative = hypo-intense',
      findingsPerStudy: 'present findings per study; histogram index = count',
      normalStudyFraction: 'studies without any finding',
      negationRate: 'absent findings that the report explicitly negates, over all absent findings',
      baselines: 'AUC per finding over all studies. The two global baselines see only whole-volume intensity statistics and should stay near 0.5; the oracle reads the lesion region (the drawn but unrendered region for absent findings) and should be near 1',
    },
    measured,
  };
}
