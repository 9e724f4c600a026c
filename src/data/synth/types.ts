// Public shapes of the synthetic benchmark: configuration, generated studies and their annotations.

export type SynthKind = 'ct' | 'mri';

/** Everything that determines a generated data set; `generateStudy(cfg, i)` is a pure function of it. */
export interface SynthConfig {
  kind: SynthKind;
  seed: number;
  /** Total number of studies (train + held-out). */
  studies: number;
  /** The last `heldOut` study indices form the held-out split. */
  heldOut: number;
  /** Voxels per scan, [D, H, W] = (z, y, x). */
  shape: [number, number, number];
  /** MRI: scans per study, 2–4 (T1, T2, FLAIR, DWI in that order). CT: always 1. */
  scans: number;
  /** Probability that a finding is present, independently per finding. */
  prevalence: number;
  /** Probability that an absent finding is explicitly negated in the report. */
  negationRate: number;
  /** Multiplies every lesion's intensity change (1 = the documented defaults). */
  contrast: number;
  /** Multiplies lesion linear sizes. */
  lesionSize: number;
  /** Multiplies the voxel noise σ. */
  noise: number;
  /** Multiplies the per-study nuisance: brightness/contrast jitter, bias field, pose and body size. */
  nuisance: number;
  /** Findings to generate (a subset of the kind's catalog, in catalog order). */
  findings: string[];
}

/**
 * One volume. Data is C-order over [D, H, W] in the project's canonical RPI orientation (what readNifti
 * returns by default): slice 0 is the most superior, row 0 the most anterior, column 0 the patient's
 * left. CT in Hounsfield units, MRI in [0, 1].
 */
export interface SynthScan {
  series: string;
  contrast: string;
  shape: [number, number, number];
  /** Voxel size in mm, (z, y, x) like `shape`. */
  spacing: [number, number, number];
  data: Float32Array;
  /** σ of the added voxel noise, in the units of `data`. */
  noiseSigma: number;
  /** Dominant tissue per voxel of the lesion-free anatomy (kind-specific codes; see TISSUE_* exports). */
  tissue: Uint8Array;
}

export type SentencePolarity = 'positive' | 'negative' | 'normal' | 'neutral';

/** A report sentence and what it says: `findings` it asserts (positive) or denies (negative, normal = all). */
export interface ReportSentence {
  text: string;
  polarity: SentencePolarity;
  findings: string[];
}

/**
 * One finding instance. Geometry is drawn for every finding of every study; only `present` ones are
 * rendered. Absent ones ("virtual" lesions) mark where the finding would have been, which is what the
 * lesion-region oracle baseline looks at.
 */
export interface SynthLesion {
  finding: string;
  present: boolean;
  /** Largest extent in mm (diameter for round lesions, thickness for layers, size change for organs). */
  sizeMm: number;
  /** Per scan: voxel indices where the lesion's weight is ≥ 0.5 (at least the strongest voxel). */
  masks: Uint32Array[];
  /** Per scan: mean intensity change over the mask divided by the scan's noise σ (0 when absent). */
  cnr: number[];
  /** Words the report uses for this instance (side, lobe, size...). */
  words: Record<string, string>;
}

export interface SynthStudy {
  id: string;
  index: number;
  split: 'train' | 'heldout';
  scans: SynthScan[];
  labels: Record<string, 0 | 1>;
  /** Report sentences in report order (what the manifest stores). */
  report: string[];
  sentences: ReportSentence[];
  lesions: SynthLesion[];
}

/** What a finding is and how it is talked about; `visibleIn` lists the contrasts it changes. */
export interface FindingInfo {
  name: string;
  shape: string;
  location: string;
  intensity: string;
  visibleIn: string[];
  prompt: { positive: string; negative: string };
  /** Lower-case substrings that name the finding in report sentences. */
  keywords: string[];
}
