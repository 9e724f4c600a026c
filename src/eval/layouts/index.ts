// Benchmark layouts: which reader maps a benchmark's label file to files, how its scans are read and
// preprocessed (the reference's offline + online steps, see docs/evaluation.md), and where its label file
// usually lies under the data root.
import type { ScanPipeline } from '../../data/dataset.js';
import type { Manifest } from '../../data/manifest.js';
import type { BenchmarkName, LabelTable } from '../benchmarks.js';
import { cq500Reader } from './cq500.js';
import { ctRateReader } from './ct-rate.js';
import { manifestReader } from './manifest.js';
import { mrRateReader } from './mr-rate.js';
import { pubBrain5Reader } from './pub-brain-5.js';
import { radChestCtReader } from './rad-chestct.js';
import { runLayout, type LayoutReader, type ReadLayoutOptions } from './reader.js';
import { rsnaReader, type RsnaOptions } from './rsna.js';
import type { ScanReadSettings } from './scans.js';
import type { DataTree } from './tree.js';
import type { LayoutResult } from './types.js';

export * from './types.js';
export * from './tree.js';
export { findScans, readScan, type ScanReadSettings } from './scans.js';
export { runLayout, type LayoutReader, type LayoutContext, type ReadLayoutOptions, type Resolved } from './reader.js';
export { ctRateFolders, parseCtRateMetadata, type CtRateVolumeMeta } from './ct-rate.js';
export { pubBrain5Candidates } from './pub-brain-5.js';
export { cq500Candidates } from './cq500.js';
export { buildRsnaIndex, type RsnaIndex, type RsnaOptions } from './rsna.js';
export { readNpy, readNpz, readNpzVolume, writeNpy, writeNpz, type NpyArray } from './npz.js';

export interface BenchmarkLayout {
  benchmark: BenchmarkName;
  /** Label files tried under the data root when none is given. */
  labelFiles: readonly string[];
  /** How scans are read. */
  read: ScanReadSettings;
  /** How a scan becomes model input (the model's grid comes from the model). */
  pipeline: ScanPipeline;
  /** Studies have several scans (every scan of the study is used, as the reference does). */
  multiScan: boolean;
}

export const BENCHMARK_LAYOUTS: Readonly<Record<BenchmarkName, BenchmarkLayout>> = {
  // CT-RATE's process.py keeps the file's storage order (no reorientation): 'native'.
  'ct-rate': {
    benchmark: 'ct-rate', multiScan: false, read: { orientation: 'native' }, pipeline: { kind: 'ct' },
    labelFiles: ['valid_labels.csv', 'metafiles/valid_labels.csv', 'multi_abnormality_labels/valid_predicted_labels.csv', 'dataset/multi_abnormality_labels/valid_predicted_labels.csv'],
  },
  'rad-chestct': {
    benchmark: 'rad-chestct', multiScan: false, read: { orientation: 'native', npzSpacing: [0.8, 0.8, 0.8] }, pipeline: { kind: 'ct' },
    labelFiles: ['rad_chestct_labels.csv', 'files/rad_chestct_labels.csv'],
  },
  'pub-brain-5': { benchmark: 'pub-brain-5', multiScan: true, read: { orientation: 'RPI' }, pipeline: { kind: 'mri' }, labelFiles: ['pub_brain_5.csv'] },
  'mr-rate': { benchmark: 'mr-rate', multiScan: true, read: { orientation: 'RPI' }, pipeline: { kind: 'mri' }, labelFiles: ['mr_rate_test.csv'] },
  // Head CT: the reference's HeadCT240K preprocessing is not public; the CT pipeline (HU window, 3/1/1 mm,
  // centre crop) stands in, with the window adjustable.
  rsna: { benchmark: 'rsna', multiScan: true, read: { orientation: 'RPI' }, pipeline: { kind: 'ct' }, labelFiles: ['rsna.csv'] },
  cq500: { benchmark: 'cq500', multiScan: true, read: { orientation: 'RPI' }, pipeline: { kind: 'ct' }, labelFiles: ['cq500.csv'] },
};

export interface LayoutChoice {
  /** Read our study-manifest layout instead of the benchmark's public one. */
  manifest?: Manifest;
  rsna?: RsnaOptions;
}

/** The reader for a benchmark's public layout, or the manifest layout. */
export function layoutReader(benchmark: BenchmarkName, choice: LayoutChoice = {}): LayoutReader {
  if (choice.manifest) return manifestReader(choice.manifest);
  switch (benchmark) {
    case 'ct-rate':
      return ctRateReader();
    case 'rad-chestct':
      return radChestCtReader();
    case 'pub-brain-5':
      return pubBrain5Reader();
    case 'mr-rate':
      return mrRateReader();
    case 'rsna':
      return rsnaReader(choice.rsna);
    case 'cq500':
      return cq500Reader();
  }
}

/** Maps the label table's studies (or `opts.rows` of them) to scan files under `tree`. */
export function readBenchmarkLayout(benchmark: BenchmarkName, tree: DataTree, labels: LabelTable, opts: ReadLayoutOptions & LayoutChoice = {}): Promise<LayoutResult> {
  return runLayout(layoutReader(benchmark, opts), tree, labels, opts);
}
