// Metrics from a per-study score file, per benchmark and reference release, as the reference evaluation
// scripts compute them (2025: `zeroshot_{ct_rate,rad_chestct,pub_brain_5}.py` @ fe8d764/355751d; 2026:
// `zeroshot_{ctrate,radchestct,pubbrain5,mrrate,rsna,cq500}.py` @ 1abc1d3f). Browser-safe: takes file text.
//
// Output keys and the reference keys they reproduce:
//   2025 chest CT, at the fVLM threshold t* (`threshold`): `accuracy` ("* acc (balanced)", which is plain
//   accuracy), `weighted_f1` ("* f1 (weighted)"), `recall` ("* recall"), `precision` ("* precision"), `auc`;
//   from argmax predictions: `balanced_accuracy` ("acc (balanced)"), `argmax_weighted_f1`, `argmax_recall`,
//   `argmax_precision`. Class means: Python `m += x / n` in class order (the "mean" / "* mean" blocks).
//   2026 chest CT: `auc`, `threshold`, `accuracy`, `weighted_f1`, `precision`, `recall`; means `np.nanmean`.
//   MR-RATE, RSNA, CQ500: `auc` only (the reference computes nothing else).
//   Pub-Brain-5: `per_class` holds the four 2-way anomaly tasks (Stroke, Glioma, Meningioma, Metastasis vs
//   normal), `tasks` the 3-way tumour and 5-way disease tasks. The score file has the five class columns
//   (2025: probabilities as in the reference's disease file; 2026: scaled logits, whose softmaxes are taken
//   here in float64 where the reference took them in float16), or, 2025 only, is one of the reference's
//   per-task files (see evalPubBrain5TaskFile).
// NaN (an undefined metric) serialises to null in JSON.
import { FormatError, HlipError } from '../errors.js';
import {
  ARTERIAL_CALCIFICATION, CALCIFICATION, CORONARY_CALCIFICATION, PUB_BRAIN_5_PROMPTS_2025, benchmarkInfo, caseIdCandidates,
  checkProtocol, defaultProtocol, type BenchmarkName, type LabelTable, type Protocol,
} from './benchmarks.js';
import { parseCsv } from './csv.js';
import * as M from './metrics.js';

export interface ScoreTable {
  source: string;
  header: string[];
  /** First-column values (volume paths or ids). */
  keys: string[];
  /** 1-based file line of each row. */
  lines: number[];
  rows: string[][];
}

/** Parse a score file in the reference results layout: first column the volume path or id, then one column per class. */
export function parseScores(text: string, source: string): ScoreTable {
  const csv = parseCsv(text, source);
  if (csv.header.length < 2) throw new FormatError(source, 'a score file needs an id column and at least one class column');
  if (csv.rows.length === 0) throw new FormatError(source, 'no score rows');
  return { source, header: csv.header, keys: csv.rows.map((r) => r[0]!.trim()), lines: csv.lines, rows: csv.rows };
}

/**
 * Pub-Brain-5 only: whether the five score columns are scaled logits or probabilities. Default: 2025
 * probabilities (the reference's disease_classification_*.csv), 2026 logits (what its metric takes).
 */
export type ScoreKind = 'logits' | 'probabilities';

export interface ScoreEvalOptions {
  protocol?: Protocol;
  scoreKind?: ScoreKind;
  /** Add ROC curve points per binary class (for plots). */
  roc?: boolean;
}

export type MetricRecord = Record<string, number>;

export interface RocPoints {
  fpr: number[];
  tpr: number[];
  /** `score >= t` per point; the first is +Infinity (null in JSON). */
  thresholds: number[];
}

export interface TaskResult {
  n_cases: number;
  metrics: MetricRecord;
  per_class?: Record<string, MetricRecord>;
}

export interface ScoreEvalResult {
  benchmark: BenchmarkName;
  protocol: Protocol;
  scores: string;
  labels: string;
  /** Score rows evaluated. */
  n_cases: number;
  /** Rows in the label file, and how many of them had no score row (left out, as the reference skips missing studies). */
  n_labels: number;
  n_labels_unscored: number;
  /** Per label-file class (after merges). */
  per_class: Record<string, MetricRecord>;
  /** The reference's "mean auc" (Pub-Brain-5: mean over the four 2-way anomaly tasks). */
  macro_auc: number;
  /** Every per-class metric averaged over classes as the reference averages it. */
  macro: MetricRecord;
  /** Pub-Brain-5 multi-class tasks (tumor 3-way, disease 5-way). */
  tasks?: Record<string, TaskResult>;
  roc?: Record<string, RocPoints>;
}

// ---------------------------------------------------------------------------------------------------------
// Matching and columns

interface Cases {
  /** Label row per evaluated score row. */
  labelRow: number[];
  /** Score row per evaluated case. */
  scoreRow: number[];
}

function matchCases(bench: BenchmarkName, labels: LabelTable, scores: ScoreTable): Cases {
  const index = new Map(labels.ids.map((id, i) => [id, i]));
  const labelRow: number[] = [];
  const scoreRow: number[] = [];
  const missing: string[] = [];
  const firstRowOf = new Map<number, number>();
  const keysSeen = new Map<string, number>();
  scores.keys.forEach((key, r) => {
    const prevKey = keysSeen.get(key);
    if (prevKey !== undefined) throw new FormatError(scores.source, `lines ${scores.lines[prevKey]} and ${scores.lines[r]} both score '${key}'`);
    keysSeen.set(key, r);
    const row = caseIdCandidates(key).map((id) => index.get(id)).find((i) => i !== undefined);
    if (row === undefined) {
      missing.push(key);
      return;
    }
    const prev = firstRowOf.get(row);
    // RSNA: every series folder of a study is its own case with the study's labels (the reference's layout).
    if (prev !== undefined && bench !== 'rsna') {
      throw new FormatError(scores.source, `lines ${scores.lines[prev]} ('${scores.keys[prev]}') and ${scores.lines[r]} ('${key}') are the same case '${labels.ids[row]}'`);
    }
    if (prev === undefined) firstRowOf.set(row, r);
    labelRow.push(row);
    scoreRow.push(r);
  });
  if (missing.length) {
    const shown = missing.slice(0, 5).map((k) => `'${k}'`).join(', ');
    throw new FormatError(scores.source, `${missing.length} of ${scores.keys.length} score rows have no case in the labels file ${labels.source} (ids are matched on the file name without directories and extensions): ${shown}${missing.length > 5 ? ', …' : ''}`);
  }
  return { labelRow, scoreRow };
}

function findColumn(scores: ScoreTable, names: readonly string[]): number {
  for (const n of names) {
    const i = scores.header.indexOf(n);
    if (i > 0) return i;
  }
  for (const n of names) {
    const i = scores.header.findIndex((h, j) => j > 0 && h.toLowerCase() === n.toLowerCase());
    if (i > 0) return i;
  }
  return -1;
}

/** Score column per class, or a FormatError naming every missing column. */
function requireColumns(scores: ScoreTable, wanted: { name: string; alias: readonly string[] }[]): number[] {
  const idx = wanted.map((w) => findColumn(scores, [w.name, ...w.alias]));
  const missing = wanted.filter((_, i) => idx[i]! < 0).map((w) => `'${w.name}'`);
  if (missing.length) throw new FormatError(scores.source, `missing score column(s) ${missing.join(', ')} (header: ${scores.header.join(', ')})`);
  return idx;
}

/** One score column over the evaluated cases; non-numeric, NaN or infinite cells are errors naming the cell. */
function scoreColumn(scores: ScoreTable, col: number, cases: Cases, f32 = false): Float64Array {
  const out = new Float64Array(cases.scoreRow.length);
  cases.scoreRow.forEach((r, i) => {
    const s = scores.rows[r]![col]!.trim();
    const v = s === '' ? NaN : Number(s);
    if (!Number.isFinite(v)) throw new FormatError(scores.source, `line ${scores.lines[r]}, column '${scores.header[col]}': score '${s}' is not a finite number`);
    out[i] = f32 ? Math.fround(v) : v;
  });
  return out;
}

function labelColumn(labels: LabelTable, cls: string, cases: Cases): Uint8Array {
  const k = labels.classes.indexOf(cls);
  if (k < 0) throw new HlipError('config', `label table has no class '${cls}'`);
  const out = new Uint8Array(cases.labelRow.length);
  cases.labelRow.forEach((r, i) => (out[i] = labels.values[r * labels.classes.length + k]!));
  return out;
}

/** Run a metric step, prefixing a MetricError with what it was computing. */
function named<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof M.MetricError) throw new M.MetricError(`${what}: ${e.message}`);
    throw e;
  }
}

function rocPoints(y: M.Vec, s: M.Vec): RocPoints | undefined {
  try {
    const r = M.rocCurve(y, s);
    return { fpr: Array.from(r.fpr), tpr: Array.from(r.tpr), thresholds: Array.from(r.thresholds) };
  } catch (e) {
    if (e instanceof M.MetricError) return undefined;
    throw e;
  }
}

function meanOver(per: Record<string, MetricRecord>, keys: readonly string[], mean: (xs: number[]) => number): MetricRecord {
  const out: MetricRecord = {};
  for (const k of keys) out[k] = mean(Object.values(per).map((m) => m[k]!));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Chest CT (CT-RATE, Rad-ChestCT)

function evalChestCt(bench: 'ct-rate' | 'rad-chestct', protocol: Protocol, labels: LabelTable, scores: ScoreTable, cases: Cases, roc: Record<string, RocPoints> | undefined) {
  const info = benchmarkInfo(bench);
  const f32 = protocol === '2026'; // the 2026 scripts cast scores to float32 before every metric
  const direct = info.classes.filter((c) => c !== CALCIFICATION || findColumn(scores, [CALCIFICATION]) > 0);
  const cols = requireColumns(scores, direct.map((c) => ({ name: c, alias: [] })));
  const data = new Map<string, { s: Float64Array; pred: Int8Array }>();
  direct.forEach((c, i) => {
    const s = scoreColumn(scores, cols[i]!, cases, f32);
    data.set(c, { s, pred: M.thresholdPredictions(s, 0.5) });
  });
  if (info.classes.includes(CALCIFICATION) && !data.has(CALCIFICATION)) {
    if (protocol === '2026') throw new FormatError(scores.source, `the 2026 protocol scores Rad-ChestCT's '${CALCIFICATION}' class directly; no such column (header: ${scores.header.join(', ')})`);
    // 2025 merge: prediction = OR of the two argmax predictions; score = max if either is > 0.5, else min.
    const [ca, cb] = requireColumns(scores, [{ name: CORONARY_CALCIFICATION, alias: [] }, { name: ARTERIAL_CALCIFICATION, alias: [] }]);
    const a = scoreColumn(scores, ca!, cases), b = scoreColumn(scores, cb!, cases);
    const s = new Float64Array(a.length);
    const pred = new Int8Array(a.length);
    for (let i = 0; i < a.length; i++) {
      const hi = a[i]! > 0.5 || b[i]! > 0.5;
      s[i] = hi ? Math.max(a[i]!, b[i]!) : Math.min(a[i]!, b[i]!);
      pred[i] = hi ? 1 : 0;
    }
    data.set(CALCIFICATION, { s, pred });
  }
  const perClass: Record<string, MetricRecord> = {};
  for (const c of info.classes) {
    const { s, pred } = data.get(c)!;
    const y = labelColumn(labels, c, cases);
    // The reference calls find_threshold first; it crashes (IndexError) on a one-class column.
    const t = named(`class '${c}'`, () => M.fvlmThreshold(y, s)).threshold;
    const q = M.thresholdPredictions(s, t);
    if (protocol === '2025') {
      perClass[c] = {
        auc: named(`class '${c}'`, () => M.rocAuc(y, s)),
        threshold: t,
        accuracy: M.accuracy(y, q),
        weighted_f1: M.weightedF1(y, q),
        recall: M.recall(y, q),
        precision: M.precision(y, q),
        balanced_accuracy: M.balancedAccuracy(y, pred),
        argmax_weighted_f1: M.weightedF1(y, pred),
        argmax_recall: M.recall(y, pred),
        argmax_precision: M.precision(y, pred),
      };
    } else {
      perClass[c] = { auc: M.rocAucOrNaN(y, s), threshold: t, accuracy: M.accuracy(y, q), weighted_f1: M.weightedF1(y, q), precision: M.precision(y, q), recall: M.recall(y, q) };
    }
    if (roc) {
      const p = rocPoints(y, s);
      if (p) roc[c] = p;
    }
  }
  const keys = Object.keys(perClass[info.classes[0]!]!).filter((k) => k !== 'threshold');
  const macro = meanOver(perClass, keys, protocol === '2025' ? M.sequentialMean : M.npNanMean);
  return { perClass, macro, macroAuc: macro.auc!, tasks: undefined };
}

// ---------------------------------------------------------------------------------------------------------
// Pub-Brain-5

const PB5_ANOMALY = [
  { name: 'Stroke', col: 1, paths: ['stroke', 'open_bhb'] },
  { name: 'Glioma', col: 2, paths: ['glioma', 'open_bhb'] },
  { name: 'Meningioma', col: 3, paths: ['meningioma', 'open_bhb'] },
  { name: 'Metastasis', col: 4, paths: ['metastasis', 'nyu_mets', 'ucsf_mets', 'open_bhb'] },
] as const;
const PB5_TUMOR_PATHS = ['brats23', 'nyu_mets', 'ucsf_mets'];

/**
 * The 2025 reference also writes one file per task: `<task>_detection_*.csv` (study + the positive 2-way
 * probability, e.g. column `stroke`) and `tumor_classification_*.csv` (study + 3-way probabilities Glioma,
 * Meningioma, Metastasis). Their rows are the task's studies already; metrics come from the values as written.
 */
function evalPubBrain5TaskFile(labels: LabelTable, scores: ScoreTable, cases: Cases, roc: Record<string, RocPoints> | undefined) {
  const info = benchmarkInfo('pub-brain-5');
  const task = scores.header.length === 2 ? PB5_ANOMALY.find((t) => scores.header[1]!.toLowerCase() === t.name.toLowerCase()) : undefined;
  if (task) {
    const y = labelColumn(labels, task.name, cases);
    const s = scoreColumn(scores, 1, cases);
    const pred = M.thresholdPredictions(s, 0.5); // argmax of the 2-way softmax (ties → negative)
    const m: MetricRecord = {
      auc: named(`task '${task.name}'`, () => M.rocAuc(y, s)),
      balanced_accuracy: M.balancedAccuracy(y, pred),
      weighted_f1: M.weightedF1(y, pred),
      recall: M.recall(y, pred),
      precision: M.precision(y, pred),
    };
    if (roc) {
      const p = rocPoints(y, s);
      if (p) roc[task.name] = p;
    }
    return { perClass: { [task.name]: m }, macro: { ...m }, macroAuc: m.auc!, tasks: undefined };
  }
  const names = info.classes.slice(2);
  const cols = names.map((c) => findColumn(scores, [c]));
  if (!cols.every((c) => c > 0) || findColumn(scores, [info.classes[0]!, info.aliases[info.classes[0]!]!, PUB_BRAIN_5_PROMPTS_2025[0]!]) > 0) return undefined;
  const P = cols.map((c) => scoreColumn(scores, c, cases));
  const Y = names.map((c) => labelColumn(labels, c, cases));
  const yArg = Int32Array.from(Y[0]!, (_, i) => M.argmax(Y.map((col) => col[i]!)));
  const pArg = Int32Array.from(P[0]!, (_, i) => M.argmax(P.map((col) => col[i]!)));
  const perClass: Record<string, MetricRecord> = {};
  names.forEach((c, k) => (perClass[c] = { auc: named(`tumor task, class '${c}'`, () => M.rocAuc(Y[k]!, P[k]!)) }));
  const auc = M.macroRocAuc(Y, P);
  const tasks: Record<string, TaskResult> = { tumor: { n_cases: cases.scoreRow.length, metrics: { balanced_accuracy: M.balancedAccuracy(yArg, pArg), auc } } };
  return { perClass, macro: { auc }, macroAuc: auc, tasks };
}

function evalPubBrain5(protocol: Protocol, labels: LabelTable, scores: ScoreTable, cases: Cases, kind: ScoreKind, roc: Record<string, RocPoints> | undefined) {
  const info = benchmarkInfo('pub-brain-5');
  const hasAll = info.classes.every((c, i) => findColumn(scores, [c, info.aliases[c]!, PUB_BRAIN_5_PROMPTS_2025[i]!]) > 0);
  if (!hasAll && protocol === '2025') {
    const r = evalPubBrain5TaskFile(labels, scores, cases, roc);
    if (r) return r;
  }
  const cols = requireColumns(scores, info.classes.map((c, i) => ({ name: c, alias: [info.aliases[c]!, PUB_BRAIN_5_PROMPTS_2025[i]!] })));
  const S = cols.map((c) => scoreColumn(scores, c, cases));
  const G = info.classes.map((c) => labelColumn(labels, c, cases));
  const n = cases.scoreRow.length;
  if (kind === 'probabilities') {
    for (let i = 0; i < n; i++) {
      for (const s of S) {
        if (s[i]! < 0 || s[i]! > 1) throw new FormatError(scores.source, `line ${scores.lines[cases.scoreRow[i]!]}: ${s[i]} is not a probability (pass --score-kind logits for scaled logits)`);
      }
    }
  }
  // Softmax over a subset of the five columns (probabilities: renormalised over the subset).
  const sub = (i: number, cs: readonly number[]): Float64Array => {
    const v = cs.map((c) => S[c]![i]!);
    if (kind === 'logits') return M.softmax(v);
    if (cs.length === S.length) return Float64Array.from(v); // all five: the probabilities as written
    const tot = v.reduce((a, b) => a + b, 0);
    if (!(tot > 0)) throw new FormatError(scores.source, `line ${scores.lines[cases.scoreRow[i]!]}: probabilities of columns ${cs.join(',')} sum to 0`);
    return Float64Array.from(v, (x) => x / tot);
  };
  const select = (keep: (i: number) => boolean) => Array.from({ length: n }, (_, i) => i).filter(keep);
  const keyOf = (i: number) => labels.keys[cases.labelRow[i]!]!;
  const nonEmpty = (what: string, rows: number[], hint: string) => {
    if (rows.length === 0) throw new M.MetricError(`Pub-Brain-5 ${what}: no cases (${hint})`);
    return rows;
  };

  const perClass: Record<string, MetricRecord> = {};
  for (const task of PB5_ANOMALY) {
    const rows = protocol === '2025'
      ? nonEmpty(task.name, select((i) => task.paths.some((p) => keyOf(i).includes(p))), `2025: label-file study paths must contain ${task.paths.map((p) => `'${p}'`).join(' or ')}`)
      : nonEmpty(task.name, select((i) => G[0]![i]! + G[task.col]![i]! === 1), 'no study labelled Normal or ' + task.name);
    const y = Uint8Array.from(rows, (i) => G[task.col]![i]!);
    const pairs = rows.map((i) => sub(i, [0, task.col]));
    const s = Float64Array.from(pairs, (p) => p[1]!);
    const what = `task '${task.name}'`;
    if (protocol === '2025') {
      const pred = Int8Array.from(pairs, (p) => M.argmax(p));
      perClass[task.name] = {
        auc: named(what, () => M.rocAuc(y, s)),
        balanced_accuracy: M.balancedAccuracy(y, pred),
        weighted_f1: M.weightedF1(y, pred),
        recall: M.recall(y, pred),
        precision: M.precision(y, pred),
      };
    } else {
      const pred = M.thresholdPredictions(s, 0.5, true);
      perClass[task.name] = { auc: M.rocAucOrNaN(y, s), weighted_f1: M.weightedF1(y, pred), balanced_accuracy: M.balancedAccuracy(y, pred) };
    }
    if (roc) {
      const p = rocPoints(y, s);
      if (p) roc[task.name] = p;
    }
  }
  const keys = Object.keys(perClass.Stroke!);
  const macro = meanOver(perClass, keys, protocol === '2025' ? M.npMean : M.npNanMean);

  const multi = (what: string, rows: number[], cs: readonly number[]): TaskResult => {
    const probs = rows.map((i) => sub(i, cs));
    const yCols = cs.map((c) => Uint8Array.from(rows, (i) => G[c]![i]!));
    const yArg = Int32Array.from(rows, (_, j) => M.argmax(yCols.map((col) => col[j]!)));
    const pArg = Int32Array.from(probs, (p) => M.argmax(p));
    const pCols = cs.map((_, k) => Float64Array.from(probs, (p) => p[k]!));
    if (protocol === '2025') {
      return { n_cases: rows.length, metrics: { balanced_accuracy: M.balancedAccuracy(yArg, pArg), auc: named(`${what} task`, () => M.macroRocAuc(yCols, pCols)) } };
    }
    // 2026: tumor uses one-hot of argmax(ground truth); disease the ground-truth columns themselves.
    const oneHot = what === 'tumor' ? cs.map((_, k) => Uint8Array.from(yArg, (a) => (a === k ? 1 : 0))) : yCols;
    let auc = NaN;
    try {
      auc = M.macroRocAuc(oneHot, pCols);
    } catch (e) {
      if (!(e instanceof M.MetricError)) throw e;
    }
    const per: Record<string, MetricRecord> = {};
    cs.forEach((c, k) => {
      const yb = Uint8Array.from(yArg, (a) => (a === k ? 1 : 0));
      const pb = M.thresholdPredictions(pCols[k]!, 0.5, true);
      per[info.classes[c]!] = { auc: M.rocAucOrNaN(yb, pCols[k]!), weighted_f1: M.weightedF1(yb, pb), balanced_accuracy: M.balancedAccuracy(yb, pb) };
    });
    return { n_cases: rows.length, metrics: { auc, weighted_f1: M.weightedF1(yArg, pArg), balanced_accuracy: M.balancedAccuracy(yArg, pArg) }, per_class: per };
  };
  const tumorRows = protocol === '2025'
    ? nonEmpty('tumor', select((i) => PB5_TUMOR_PATHS.some((p) => keyOf(i).includes(p))), "2025: label-file study paths must contain 'brats23', 'nyu_mets' or 'ucsf_mets'")
    : nonEmpty('tumor', select((i) => G[2]![i]! + G[3]![i]! + G[4]![i]! === 1), 'no study with exactly one tumour label');
  // The four 2-way anomaly tasks are `per_class` (their mean is `macro`); the multi-class tasks follow.
  const tasks: Record<string, TaskResult> = {
    tumor: multi('tumor', tumorRows, [2, 3, 4]),
    disease: multi('disease', select(() => true), [0, 1, 2, 3, 4]),
  };
  return { perClass, macro, macroAuc: macro.auc!, tasks };
}

// ---------------------------------------------------------------------------------------------------------
// AUC-only benchmarks (MR-RATE, RSNA, CQ500)

function evalAucOnly(bench: 'mr-rate' | 'rsna' | 'cq500', labels: LabelTable, scores: ScoreTable, cases: Cases, roc: Record<string, RocPoints> | undefined) {
  const info = benchmarkInfo(bench);
  const cols = requireColumns(scores, info.classes.map((c) => ({ name: c, alias: info.aliases[c] ? [info.aliases[c]!] : [] })));
  const perClass: Record<string, MetricRecord> = {};
  const aucs: number[] = [];
  info.classes.forEach((c, i) => {
    const s = scoreColumn(scores, cols[i]!, cases);
    const y = labelColumn(labels, c, cases);
    const auc = M.rocAucOrNaN(y, s);
    perClass[c] = { auc };
    aucs.push(auc);
    if (roc && !Number.isNaN(auc)) roc[c] = rocPoints(y, s)!;
  });
  // MR-RATE: mean over labels with both classes; RSNA/CQ500: sklearn's macro AUC, undefined if any column is.
  const macroAuc = bench === 'mr-rate' ? M.npMean(aucs.filter((a) => !Number.isNaN(a))) : aucs.some(Number.isNaN) ? NaN : M.npMean(aucs);
  return { perClass, macro: { auc: macroAuc }, macroAuc, tasks: undefined };
}

// ---------------------------------------------------------------------------------------------------------

/** Metrics of a score file against a label table, as the reference computes them for that benchmark and release. */
export function evaluateScores(bench: BenchmarkName, labels: LabelTable, scores: ScoreTable, opts: ScoreEvalOptions = {}): ScoreEvalResult {
  const protocol = opts.protocol ?? defaultProtocol(bench);
  checkProtocol(bench, protocol);
  if (labels.benchmark !== bench) throw new HlipError('config', `labels were parsed for ${labels.benchmark}, not ${bench}`);
  if (opts.scoreKind && opts.scoreKind !== 'logits' && bench !== 'pub-brain-5') throw new HlipError('config', '--score-kind applies to pub-brain-5 only');
  const cases = matchCases(bench, labels, scores);
  const roc = opts.roc ? ({} as Record<string, RocPoints>) : undefined;
  const r = bench === 'ct-rate' || bench === 'rad-chestct'
    ? evalChestCt(bench, protocol, labels, scores, cases, roc)
    : bench === 'pub-brain-5'
      ? evalPubBrain5(protocol, labels, scores, cases, opts.scoreKind ?? (protocol === '2025' ? 'probabilities' : 'logits'), roc)
      : evalAucOnly(bench, labels, scores, cases, roc);
  const scored = new Set(cases.labelRow);
  const out: ScoreEvalResult = {
    benchmark: bench,
    protocol,
    scores: scores.source,
    labels: labels.source,
    n_cases: cases.scoreRow.length,
    n_labels: labels.ids.length,
    n_labels_unscored: labels.ids.length - scored.size,
    per_class: r.perClass,
    macro_auc: r.macroAuc,
    macro: r.macro,
  };
  if (r.tasks) out.tasks = r.tasks;
  if (roc) out.roc = roc;
  return out;
}

const fmt = (v: number | undefined) => (v === undefined ? '' : Number.isNaN(v) ? 'n/a' : Number.isInteger(v) ? String(v) : v.toFixed(4));

function table(rows: [string, MetricRecord][], keys: string[]): string[] {
  const head = ['class', ...keys];
  const cells = rows.map(([name, m]) => [name, ...keys.map((k) => fmt(m[k]))]);
  const widths = head.map((h, j) => Math.max(h.length, ...cells.map((c) => c[j]!.length)));
  const line = (c: string[]) => c.map((x, j) => (j === 0 ? x.padEnd(widths[j]!) : x.padStart(widths[j]!))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
}

/** Readable table of a result (the CLI's output without --json). */
export function formatScoreEval(r: ScoreEvalResult): string {
  const keys = [...new Set(Object.values(r.per_class).flatMap((m) => Object.keys(m)))];
  const out = [
    `${benchmarkInfo(r.benchmark).title}, ${r.protocol} protocol: ${r.n_cases} cases (${r.n_labels_unscored} of ${r.n_labels} labelled studies without scores)`,
    '',
    ...table([...Object.entries(r.per_class), ['mean', r.macro]], keys),
  ];
  for (const [name, t] of Object.entries(r.tasks ?? {})) {
    const tk = [...new Set([...Object.keys(t.metrics), ...Object.values(t.per_class ?? {}).flatMap((m) => Object.keys(m))])];
    out.push('', `${name} (${t.n_cases} cases)`, ...table([...Object.entries(t.per_class ?? {}), [name, t.metrics]], tk));
  }
  out.push('', `macro AUC: ${fmt(r.macro_auc)}`);
  return out.join('\n');
}
