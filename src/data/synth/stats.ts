// Measured difficulty of a generated data set, and the sanity baselines that show it needs the images'
// local content: classifiers on global intensity statistics (which should stay near chance) against an
// oracle that reads the lesion region (which should be near perfect).
import { CT_TISSUE } from './ct.js';
import { MRI_TISSUE } from './mri.js';
import type { SynthConfig, SynthStudy } from './types.js';

/** ROC AUC by the Mann–Whitney statistic, ties counted half; NaN when a class is empty. */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0, rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[order[k]!]) {
      pos++;
      rankSum += rank;
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** L2-regularised logistic regression by Newton's method on standardised features; returns a scorer. */
export function fitLogistic(X: number[][], y: number[], l2 = 1e-2, iters = 25): (x: number[]) => number {
  const n = X.length, d = X[0]?.length ?? 0;
  const mu = new Array<number>(d).fill(0), sd = new Array<number>(d).fill(0);
  for (const r of X) for (let j = 0; j < d; j++) mu[j]! += r[j]! / n;
  for (const r of X) for (let j = 0; j < d; j++) sd[j]! += (r[j]! - mu[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]!) || 1;
  const Z = X.map((r) => [1, ...r.map((v, j) => (v - mu[j]!) / sd[j]!)]);
  const m = d + 1;
  const w = new Array<number>(m).fill(0);
  for (let it = 0; it < iters; it++) {
    const g = new Array<number>(m).fill(0);
    const Hm = Array.from({ length: m }, () => new Array<number>(m).fill(0));
    for (let i = 0; i < n; i++) {
      const z = Z[i]!;
      let t = 0;
      for (let j = 0; j < m; j++) t += w[j]! * z[j]!;
      const p = 1 / (1 + Math.exp(-t));
      const r = p - y[i]!, s = p * (1 - p);
      for (let j = 0; j < m; j++) {
        g[j]! += r * z[j]!;
        for (let k = 0; k <= j; k++) Hm[j]![k]! += s * z[j]! * z[k]!;
      }
    }
    for (let j = 0; j < m; j++) {
      for (let k = 0; k < j; k++) Hm[k]![j] = Hm[j]![k]!;
      if (j > 0) {
        g[j]! += l2 * n * w[j]!;
        Hm[j]![j]! += l2 * n;
      }
      Hm[j]![j]! += 1e-9;
    }
    const step = solve(Hm, g);
    let change = 0;
    for (let j = 0; j < m; j++) {
      w[j]! -= step[j]!;
      change = Math.max(change, Math.abs(step[j]!));
    }
    if (change < 1e-8) break;
  }
  return (x) => {
    let t = w[0]!;
    for (let j = 0; j < d; j++) t += w[j + 1]! * ((x[j]! - mu[j]!) / sd[j]!);
    return t;
  };
}

/** Gaussian elimination with partial pivoting (small dense systems). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((r, i) => [...r, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    const piv = M[c]![c]! || 1e-12;
    for (let r = c + 1; r < n; r++) {
      const f = M[r]![c]! / piv;
      if (f === 0) continue;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= M[r]![k]! * x[k]!;
    x[r] = s / (M[r]![r]! || 1e-12);
  }
  return x;
}

/** Out-of-fold AUC of logistic regression with k folds (fold = index mod k); NaN if a class is empty. */
export function crossValidatedAuc(X: number[][], y: number[], folds = 5): number {
  const scores = new Array<number>(y.length).fill(0);
  for (let f = 0; f < folds; f++) {
    const tr = y.map((_, i) => i).filter((i) => i % folds !== f);
    const te = y.map((_, i) => i).filter((i) => i % folds === f);
    const ytr = tr.map((i) => y[i]!);
    if (te.length === 0) continue;
    if (ytr.every((v) => v === ytr[0])) {
      for (const i of te) scores[i] = 0;
      continue;
    }
    const model = fitLogistic(tr.map((i) => X[i]!), ytr);
    for (const i of te) scores[i] = model(X[i]!);
  }
  return auc(scores, y);
}

/** Whole-volume mean and standard deviation of every scan. */
export function globalFeatures(study: SynthStudy): number[] {
  const out: number[] = [];
  for (const s of study.scans) {
    let sum = 0, sq = 0;
    for (let i = 0; i < s.data.length; i++) {
      const v = s.data[i]!;
      sum += v;
      sq += v * v;
    }
    const m = sum / s.data.length;
    out.push(m, Math.sqrt(Math.max(0, sq / s.data.length - m * m)));
  }
  return out;
}

/** Normalised 16-bin intensity histogram of every scan (CT −1024…600 HU, MRI 0…1). */
export function histogramFeatures(study: SynthStudy, kind: SynthConfig['kind'], bins = 16): number[] {
  const [lo, hi] = kind === 'ct' ? [-1024, 600] : [0, 1];
  const out: number[] = [];
  for (const s of study.scans) {
    const h = new Array<number>(bins).fill(0);
    for (let i = 0; i < s.data.length; i++) {
      let b = Math.floor(((s.data[i]! - lo) / (hi - lo)) * bins);
      b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
      h[b]!++;
    }
    for (const c of h) out.push(c / s.data.length);
  }
  return out;
}

interface OracleSpec {
  /** Contrasts to read, best first. */
  contrasts: string[];
  /** Reference tissue codes. */
  ref: number[];
  /** +1: the finding raises intensity relative to the reference, −1: lowers it. */
  sign: number;
}

const C = CT_TISSUE, M = MRI_TISSUE;
const ORACLE: Record<string, OracleSpec> = {
  'Lung nodule': { contrasts: ['CT'], ref: [C.lung], sign: 1 },
  Consolidation: { contrasts: ['CT'], ref: [C.lung], sign: 1 },
  Emphysema: { contrasts: ['CT'], ref: [C.lung], sign: -1 },
  'Pleural effusion': { contrasts: ['CT'], ref: [C.lung], sign: 1 },
  Atelectasis: { contrasts: ['CT'], ref: [C.lung], sign: 1 },
  'Pericardial effusion': { contrasts: ['CT'], ref: [C.lung], sign: 1 },
  Cardiomegaly: { contrasts: ['CT'], ref: [C.lung], sign: 1 },
  'Arterial wall calcification': { contrasts: ['CT'], ref: [C.aorta], sign: 1 },
  Mass: { contrasts: ['FLAIR', 'T2'], ref: [M.wm], sign: 1 },
  'White matter lesions': { contrasts: ['FLAIR'], ref: [M.wm], sign: 1 },
  Hemorrhage: { contrasts: ['T1'], ref: [M.wm, M.gm], sign: 1 },
  'Arachnoid cyst': { contrasts: ['T2', 'T1'], ref: [M.gm], sign: 1 },
  Infarct: { contrasts: ['DWI', 'FLAIR', 'T2'], ref: [M.gm], sign: 1 },
  Ventriculomegaly: { contrasts: ['T2', 'T1'], ref: [M.wm], sign: 1 },
};

function median(a: Float64Array): number {
  const s = Float64Array.from(a).sort();
  return s.length ? s[s.length >> 1]! : 0;
}

/**
 * Lesion-region oracle: robust z-score of the mean intensity inside the finding's region (the real lesion
 * when present, the drawn-but-not-rendered one when absent) against the study's own reference tissue.
 */
export function oracleScore(study: SynthStudy, finding: string): number {
  const spec = ORACLE[finding];
  const L = study.lesions.find((l) => l.finding === finding);
  if (!spec || !L) return 0;
  let s = study.scans.findIndex((sc) => sc.contrast === spec.contrasts[0]);
  for (const c of spec.contrasts) {
    const k = study.scans.findIndex((sc) => sc.contrast === c);
    if (k >= 0) {
      s = k;
      break;
    }
  }
  if (s < 0) s = 0;
  const scan = study.scans[s]!;
  const mask = L.masks[s]!;
  if (mask.length === 0) return 0;
  const inMask = new Uint8Array(scan.data.length);
  let sum = 0;
  for (const i of mask) {
    inMask[i] = 1;
    sum += scan.data[i]!;
  }
  const ref: number[] = [];
  for (let i = 0; i < scan.data.length; i++) if (!inMask[i] && spec.ref.includes(scan.tissue[i]!)) ref.push(scan.data[i]!);
  const r = Float64Array.from(ref);
  const med = median(r);
  const mad = median(r.map((v) => Math.abs(v - med))) * 1.4826 || scan.noiseSigma || 1;
  return (spec.sign * (sum / mask.length - med)) / mad;
}

interface Range {
  mean: number;
  min: number;
  max: number;
}
function range(v: number[]): Range | null {
  if (v.length === 0) return null;
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return { mean: r(v.reduce((a, b) => a + b, 0) / v.length), min: r(Math.min(...v)), max: r(Math.max(...v)) };
}

export interface FindingStats {
  prevalence: number;
  positives: number;
  sizeMm: Range | null;
  voxels: Range | null;
  /** Per contrast the finding changes: contrast-to-noise ratio (mean change in the lesion region / σ). */
  cnr: Record<string, Range | null>;
}

export interface BaselineAuc {
  method: string;
  perFinding: Record<string, number>;
  macro: number;
}

export interface DifficultyReport {
  studies: number;
  findings: Record<string, FindingStats>;
  findingsPerStudy: { mean: number; histogram: number[] };
  normalStudyFraction: number;
  /** Absent findings explicitly negated in the report, over all absent findings. */
  negationRate: number;
  sentencesPerReport: number;
  wordsPerReport: number;
  noiseSigma: Record<string, Range | null>;
  baselines: BaselineAuc[];
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Collects statistics one study at a time (studies can be dropped after `add`, so a large data set never
 * has to be in memory) and reports them with the baselines.
 */
export class DifficultyAccumulator {
  private n = 0;
  private readonly labels: number[][] = [];
  private readonly global: number[][] = [];
  private readonly hist: number[][] = [];
  private readonly oracle: number[][] = [];
  private readonly size: Record<string, number[]> = {};
  private readonly vox: Record<string, number[]> = {};
  private readonly cnr: Record<string, Record<string, number[]>> = {};
  private readonly sigma: Record<string, number[]> = {};
  private perStudy: number[] = [];
  private absent = 0;
  private negated = 0;
  private sentences = 0;
  private words = 0;

  constructor(private readonly cfg: SynthConfig, private readonly visibleIn: Record<string, string[]>) {
    for (const f of cfg.findings) {
      this.size[f] = [];
      this.vox[f] = [];
      this.cnr[f] = {};
    }
  }

  add(study: SynthStudy): void {
    this.n++;
    const f = this.cfg.findings;
    this.labels.push(f.map((k) => study.labels[k]!));
    this.global.push(globalFeatures(study));
    this.hist.push(histogramFeatures(study, this.cfg.kind));
    this.oracle.push(f.map((k) => oracleScore(study, k)));
    let count = 0;
    for (const L of study.lesions) {
      if (!L.present) continue;
      count++;
      this.size[L.finding]!.push(L.sizeMm);
      this.vox[L.finding]!.push(L.masks.reduce((a, m) => a + m.length, 0) / L.masks.length);
      study.scans.forEach((sc, s) => {
        if (!this.visibleIn[L.finding]!.includes(sc.contrast)) return;
        (this.cnr[L.finding]![sc.contrast] ??= []).push(L.cnr[s]!);
      });
    }
    this.perStudy.push(count);
    for (const sc of study.scans) (this.sigma[sc.contrast] ??= []).push(sc.noiseSigma);
    const negatedHere = new Set<string>();
    for (const s of study.sentences) if (s.polarity === 'negative') for (const k of s.findings) negatedHere.add(k);
    this.absent += f.filter((k) => study.labels[k] === 0).length;
    this.negated += negatedHere.size;
    this.sentences += study.sentences.length;
    this.words += study.report.join(' ').split(/\s+/).length;
  }

  /** Baselines over everything added: 5-fold cross-validated logistic regression, and the oracle. */
  baselines(): BaselineAuc[] {
    const f = this.cfg.findings;
    const col = (k: number): number[] => this.labels.map((r) => r[k]!);
    const mk = (method: string, fn: (k: number) => number): BaselineAuc => {
      const perFinding: Record<string, number> = {};
      const vals: number[] = [];
      f.forEach((name, k) => {
        const a = fn(k);
        perFinding[name] = round3(a);
        if (Number.isFinite(a)) vals.push(a);
      });
      return { method, perFinding, macro: round3(vals.reduce((a, b) => a + b, 0) / Math.max(1, vals.length)) };
    };
    return [
      mk('global mean+std per scan, logistic regression, 5-fold CV', (k) => crossValidatedAuc(this.global, col(k))),
      mk('global 16-bin intensity histogram per scan, logistic regression, 5-fold CV', (k) => crossValidatedAuc(this.hist, col(k))),
      mk('oracle: robust z-score of the lesion region vs the reference tissue (no training)', (k) => auc(this.oracle.map((r) => r[k]!), col(k))),
    ];
  }

  report(): DifficultyReport {
    const findings: Record<string, FindingStats> = {};
    this.cfg.findings.forEach((name, k) => {
      const pos = this.labels.filter((r) => r[k] === 1).length;
      const cnr: Record<string, Range | null> = {};
      for (const [c, v] of Object.entries(this.cnr[name]!)) cnr[c] = range(v);
      findings[name] = { prevalence: round3(pos / Math.max(1, this.n)), positives: pos, sizeMm: range(this.size[name]!), voxels: range(this.vox[name]!), cnr };
    });
    const hist = new Array<number>(this.cfg.findings.length + 1).fill(0);
    for (const c of this.perStudy) hist[c]!++;
    const noiseSigma: Record<string, Range | null> = {};
    for (const [c, v] of Object.entries(this.sigma)) noiseSigma[c] = range(v);
    return {
      studies: this.n,
      findings,
      findingsPerStudy: { mean: round3(this.perStudy.reduce((a, b) => a + b, 0) / Math.max(1, this.n)), histogram: hist },
      normalStudyFraction: round3(hist[0]! / Math.max(1, this.n)),
      negationRate: round3(this.negated / Math.max(1, this.absent)),
      sentencesPerReport: round3(this.sentences / Math.max(1, this.n)),
      wordsPerReport: round3(this.words / Math.max(1, this.n)),
      noiseSigma,
      baselines: this.baselines(),
    };
  }
}
