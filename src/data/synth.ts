// Synthetic HLIP benchmark (browser-safe): procedural chest-CT-like and brain-MRI-like studies with
// findings of several kinds, reports with varied wording and negations, and the labels and prompts of a
// zero-shot evaluation. Everything is a pure function of the configuration and the study index.
import { HlipError } from '../errors.js';
import { CT_FINDINGS, CT_FOV, CT_SHAPE, CT_TEXT, planCt, type KindPlanInput } from './synth/ct.js';
import { renderPlan } from './synth/engine.js';
import { MRI_FINDINGS, MRI_FOV, MRI_SERIES, MRI_SHAPE, MRI_TEXT, mriContrasts, planMri } from './synth/mri.js';
import { buildReport } from './synth/report.js';
import { Rng } from './synth/rng.js';
import type { FindingInfo, SynthConfig, SynthKind, SynthLesion, SynthStudy } from './synth/types.js';

export type { FindingInfo, ReportSentence, SentencePolarity, SynthConfig, SynthKind, SynthLesion, SynthScan, SynthStudy } from './synth/types.js';
export { CT_TISSUE } from './synth/ct.js';
export { MRI_TISSUE } from './synth/mri.js';

/** Difficulty presets; `medium` is the default the documentation measures. */
export const SYNTH_PRESETS = {
  easy: { contrast: 1, lesionSize: 1.3, noise: 0.6, nuisance: 0.7 },
  medium: { contrast: 1, lesionSize: 1, noise: 1, nuisance: 1 },
  hard: { contrast: 0.6, lesionSize: 0.8, noise: 1.4, nuisance: 1.3 },
} as const;
export type SynthPreset = keyof typeof SYNTH_PRESETS;

const STREAMS_PER_STUDY = 32;

/** The findings a kind can show with the given number of scans (MRI findings need their contrast). */
export function findingCatalog(kind: SynthKind, scans = 3): FindingInfo[] {
  if (kind === 'ct') return CT_FINDINGS;
  const have = new Set(mriContrasts(scans));
  return MRI_FINDINGS.filter((f) => f.visibleIn.some((c) => have.has(c)));
}

/** Field of view (z, y, x) in mm; spacing is this divided by the shape. */
export function synthFov(kind: SynthKind): [number, number, number] {
  return kind === 'ct' ? [...CT_FOV] : [...MRI_FOV];
}

/** Series names of every study, in scan order (file names are <study_id>/<series>.nii.gz). */
export function synthSeries(cfg: Pick<SynthConfig, 'kind' | 'scans'>): string[] {
  return cfg.kind === 'ct' ? ['CT'] : mriContrasts(cfg.scans).map((c) => MRI_SERIES[c]!);
}

export function synthSpacing(cfg: Pick<SynthConfig, 'kind' | 'shape'>): [number, number, number] {
  const f = synthFov(cfg.kind);
  return [f[0] / cfg.shape[0], f[1] / cfg.shape[1], f[2] / cfg.shape[2]];
}

/**
 * Voxel (i, j, k) → RAS+ world mm, row-major 4×4, for the RPI storage of generated volumes (i towards
 * the patient's right, j posterior, k inferior), centred on the field of view.
 */
export function synthAffine(shape: [number, number, number], spacing: [number, number, number]): number[] {
  const [D, H, W] = shape;
  const [sz, sy, sx] = spacing;
  return [sx, 0, 0, (0.5 - W / 2) * sx, 0, -sy, 0, (H / 2 - 0.5) * sy, 0, 0, -sz, (D / 2 - 0.5) * sz, 0, 0, 0, 1];
}

/** A complete configuration from a partial one: defaults suit the training demo (small volumes). */
export function synthConfig(p: Partial<SynthConfig> & { kind: SynthKind }, preset: SynthPreset = 'medium'): SynthConfig {
  const kind = p.kind;
  if (kind !== 'ct' && kind !== 'mri') throw new HlipError('config', `synthetic kind must be 'ct' or 'mri', got '${String(kind)}'`);
  const pr = SYNTH_PRESETS[preset];
  if (!pr) throw new HlipError('config', `unknown difficulty '${preset}' (easy, medium, hard)`);
  const scans = kind === 'ct' ? 1 : (p.scans ?? 3);
  const studies = p.studies ?? 400;
  const cfg: SynthConfig = {
    kind,
    seed: p.seed ?? 0,
    studies,
    heldOut: p.heldOut ?? Math.round(studies / 4),
    shape: p.shape ?? (kind === 'ct' ? [...CT_SHAPE] : [...MRI_SHAPE]),
    scans,
    prevalence: p.prevalence ?? 0.3,
    negationRate: p.negationRate ?? 0.5,
    contrast: p.contrast ?? pr.contrast,
    lesionSize: p.lesionSize ?? pr.lesionSize,
    noise: p.noise ?? pr.noise,
    nuisance: p.nuisance ?? pr.nuisance,
    findings: p.findings ?? findingCatalog(kind, scans).map((f) => f.name),
  };
  const bad = (msg: string): never => {
    throw new HlipError('config', `synthetic data: ${msg}`);
  };
  if (!Number.isInteger(cfg.seed) || cfg.seed < 0 || cfg.seed > 2 ** 53) bad(`seed must be a non-negative integer, got ${cfg.seed}`);
  if (!Number.isInteger(cfg.studies) || cfg.studies < 1) bad(`studies must be a positive integer, got ${cfg.studies}`);
  if (!Number.isInteger(cfg.heldOut) || cfg.heldOut < 0 || cfg.heldOut > cfg.studies) bad(`held-out count must be in [0, ${cfg.studies}], got ${cfg.heldOut}`);
  if (cfg.shape.length !== 3 || cfg.shape.some((d) => !Number.isInteger(d) || d < 8 || d > 1024)) bad(`shape must be three integers in [8, 1024], got ${cfg.shape.join('x')}`);
  if (kind === 'mri' && (!Number.isInteger(cfg.scans) || cfg.scans < 2 || cfg.scans > 4)) bad(`MRI studies have 2–4 scans, got ${cfg.scans}`);
  for (const [k, v, lo, hi] of [['prevalence', cfg.prevalence, 0, 1], ['negation rate', cfg.negationRate, 0, 1], ['contrast', cfg.contrast, 0, 4], ['lesion size', cfg.lesionSize, 0.2, 3], ['noise', cfg.noise, 0, 10], ['nuisance', cfg.nuisance, 0, 3]] as const) {
    if (!(v >= lo && v <= hi)) bad(`${k} must be in [${lo}, ${hi}], got ${v}`);
  }
  const avail = findingCatalog(kind, scans).map((f) => f.name);
  if (cfg.findings.length === 0) bad('no findings selected');
  for (const f of cfg.findings) if (!avail.includes(f)) bad(`unknown or invisible finding '${f}' for ${kind}${kind === 'mri' ? ` with ${scans} scans` : ''} (have: ${avail.join(', ')})`);
  cfg.findings = avail.filter((f) => cfg.findings.includes(f)); // catalog order, no duplicates
  return cfg;
}

export function studyId(cfg: Pick<SynthConfig, 'kind' | 'seed'>, index: number): string {
  return `synth_${cfg.kind}_s${cfg.seed}_${String(index).padStart(5, '0')}`;
}

/** Zero-shot prompt pairs for the configured findings. */
export function synthPrompts(cfg: SynthConfig): Record<string, { positive: string; negative: string }> {
  const out: Record<string, { positive: string; negative: string }> = {};
  for (const f of findingCatalog(cfg.kind, cfg.scans)) if (cfg.findings.includes(f.name)) out[f.name] = { ...f.prompt };
  return out;
}

/** The sentence prefix the reference MRI loader puts before the joined sentences (spec §3.3). */
export function reportPrefix(kind: SynthKind): string {
  return kind === 'ct' ? 'This CT study shows: ' : 'This MRI study shows: ';
}

export interface GenerateOptions {
  /** Same anatomy and noise, no finding rendered (labels and report unchanged): a counterfactual for tests. */
  omitLesions?: boolean;
}

/** Study `index` of the data set `cfg` (0 ≤ index < cfg.studies; the last cfg.heldOut are held out). */
export function generateStudy(cfg: SynthConfig, index: number, opts: GenerateOptions = {}): SynthStudy {
  if (!Number.isInteger(index) || index < 0 || index >= cfg.studies) throw new HlipError('config', `study index ${index} outside [0, ${cfg.studies})`);
  const base = index * STREAMS_PER_STUDY;
  const rng = new Rng(cfg.seed, base);
  const all = cfg.kind === 'ct' ? CT_FINDINGS : MRI_FINDINGS;
  // One draw per catalog finding whatever the selection, so labels don't depend on which are selected.
  const present: Record<string, boolean> = {};
  for (const f of all) {
    const p = rng.uniform() < cfg.prevalence;
    if (cfg.findings.includes(f.name)) present[f.name] = p;
  }
  const spacing = synthSpacing(cfg);
  const inp: KindPlanInput = {
    cfg, spacing, rng,
    fields: new Rng(cfg.seed, base + 1),
    lesionRng: (k) => new Rng(cfg.seed, base + 8 + k),
    present,
    omitLesions: opts.omitLesions === true,
    noiseStream: (s) => base + 3 + s,
  };
  const plan = cfg.kind === 'ct' ? planCt(inp) : planMri(inp);
  const rendered = renderPlan(plan, cfg.shape, spacing, cfg.seed, cfg.contrast, opts.omitLesions === true);
  const lesions: SynthLesion[] = [];
  for (const name of cfg.findings) {
    const li = plan.lesions.findIndex((l) => l.finding === name);
    const L = plan.lesions[li]!;
    const m = rendered.lesions[li]!;
    lesions.push({
      finding: name,
      present: L.present,
      sizeMm: L.sizeMm,
      masks: m.masks,
      cnr: L.present ? m.delta.map((d, s) => d / plan.scans[s]!.sigma) : m.delta.map(() => 0),
      words: L.words,
    });
  }
  const words = new Map<string, Record<string, string>>();
  for (const l of lesions) if (l.present) words.set(l.finding, l.words);
  const text = cfg.kind === 'ct' ? CT_TEXT : MRI_TEXT;
  const sentences = buildReport(text, words, { negationRate: cfg.negationRate, findings: cfg.findings }, new Rng(cfg.seed, base + 2));
  const labels: Record<string, 0 | 1> = {};
  for (const name of cfg.findings) labels[name] = present[name] ? 1 : 0;
  return {
    id: studyId(cfg, index),
    index,
    split: index >= cfg.studies - cfg.heldOut ? 'heldout' : 'train',
    scans: plan.scans.map((sp, s) => ({
      series: sp.series,
      contrast: sp.contrast,
      shape: [...cfg.shape],
      spacing,
      data: rendered.scans[s]!.data,
      noiseSigma: sp.sigma,
      tissue: rendered.scans[s]!.tissue,
    })),
    labels,
    report: sentences.map((s) => s.text),
    sentences,
    lesions,
  };
}

/** All studies of a data set in index order (one at a time: memory stays at one study). */
export function* generateStudies(cfg: SynthConfig, from = 0, to = cfg.studies): Generator<SynthStudy> {
  for (let i = from; i < to; i++) yield generateStudy(cfg, i);
}
