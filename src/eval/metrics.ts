// Classification metrics in float64, computed the way the HLIP reference computes them with scikit-learn and
// NumPy: the same operations in the same order (pairwise summation, trapezoid rule over the thinned ROC
// curve, count ratios), so values agree with the reference's to the last digit, not just to 1e-12.
// Pure TypeScript (no Node or GPU API): runs in Node and browsers.
import { HlipError } from '../errors.js';

/** A metric that is undefined for the data given (e.g. ROC AUC when y_true holds one class). */
export class MetricError extends HlipError {
  constructor(message: string) {
    super('format', message);
    this.name = 'MetricError';
  }
}

export type Vec = ArrayLike<number>;

// ---------------------------------------------------------------------------------------------------------
// NumPy reductions

function pairwise(a: Vec, off: number, n: number): number {
  if (n < 8) {
    let r = -0; // NumPy starts at -0.0 so that a sum of -0.0 stays -0.0
    for (let i = 0; i < n; i++) r += a[off + i]!;
    return r;
  }
  if (n <= 128) {
    let r0 = a[off]!, r1 = a[off + 1]!, r2 = a[off + 2]!, r3 = a[off + 3]!;
    let r4 = a[off + 4]!, r5 = a[off + 5]!, r6 = a[off + 6]!, r7 = a[off + 7]!;
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      const p = off + i;
      r0 += a[p]!; r1 += a[p + 1]!; r2 += a[p + 2]!; r3 += a[p + 3]!;
      r4 += a[p + 4]!; r5 += a[p + 5]!; r6 += a[p + 6]!; r7 += a[p + 7]!;
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) res += a[off + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwise(a, off, n2) + pairwise(a, off + n2, n - n2);
}

/** `np.sum` of a contiguous float64 array: NumPy's pairwise summation (8 accumulators, blocks of 128). */
export function npSum(a: Vec): number {
  return 0 + pairwise(a, 0, a.length); // the reduction starts from the identity 0.0
}

/** `np.mean`: pairwise sum divided by the count (NaN for an empty array). */
export function npMean(a: Vec): number {
  return a.length === 0 ? NaN : npSum(a) / a.length;
}

/** `np.nanmean`: NaNs replaced by 0 for the sum and left out of the count (NaN when all are NaN). */
export function npNanMean(a: Vec): number {
  const b = new Float64Array(a.length);
  let cnt = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (Number.isNaN(v)) continue;
    b[i] = v;
    cnt++;
  }
  return cnt === 0 ? NaN : npSum(b) / cnt;
}

/** Python's `m = 0.; for x in xs: m += x / len(xs)` (the 2025 reference scripts' class average). */
export function sequentialMean(a: Vec): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i]! / a.length;
  return m;
}

/** `np.linspace(start, stop, num)` bit for bit: `i * ((stop - start) / (num - 1)) + start`, last = stop. */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  if (num === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// ROC curve and AUC (sklearn.metrics.roc_curve / roc_auc_score / auc)

function checkBinary(yTrue: Vec, what: string): void {
  for (let i = 0; i < yTrue.length; i++) {
    const v = yTrue[i]!;
    if (v !== 0 && v !== 1) throw new MetricError(`${what}: labels must be 0 or 1, got ${v} at index ${i}`);
  }
}

function checkScores(yTrue: Vec, yScore: Vec, what: string): void {
  if (yTrue.length !== yScore.length) throw new MetricError(`${what}: ${yTrue.length} labels but ${yScore.length} scores`);
  if (yTrue.length === 0) throw new MetricError(`${what}: no samples`);
  for (let i = 0; i < yScore.length; i++) {
    if (!Number.isFinite(yScore[i]!)) throw new MetricError(`${what}: score ${yScore[i]} at index ${i} is not finite`);
  }
  checkBinary(yTrue, what);
}

export interface RocCurve {
  /** False-positive rate per point, from 0 to 1. */
  fpr: Float64Array;
  /** True-positive rate per point, from 0 to 1. */
  tpr: Float64Array;
  /** Score threshold per point (`score >= t` is positive); the first is +Infinity. */
  thresholds: Float64Array;
}

/**
 * `sklearn.metrics.roc_curve(y_true, y_score)` with `drop_intermediate=True`: one point per distinct score
 * (descending), collinear points dropped, (0, 0) prepended. Throws MetricError when a class is absent (the
 * reference gets NaN rates with a warning there; nothing downstream can use them).
 */
export function rocCurve(yTrue: Vec, yScore: Vec, dropIntermediate = true): RocCurve {
  checkScores(yTrue, yScore, 'roc_curve');
  const n = yScore.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => yScore[b]! - yScore[a]!);
  // One point at the end of each run of equal scores: cumulative true and false positives there.
  let fps: number[] = [];
  let tps: number[] = [];
  let thr: number[] = [];
  let tp = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    tp += yTrue[i]!;
    if (k === n - 1 || yScore[order[k + 1]!]! !== yScore[i]!) {
      tps.push(tp);
      fps.push(k + 1 - tp);
      thr.push(yScore[i]!);
    }
  }
  if (dropIntermediate && fps.length > 2) {
    // Keep the ends and every point where the second difference of fps or tps is non-zero.
    const keep = [0];
    for (let i = 1; i < fps.length - 1; i++) {
      const dd = (f: number[]) => (f[i + 1]! - f[i]!) - (f[i]! - f[i - 1]!);
      if (dd(fps) !== 0 || dd(tps) !== 0) keep.push(i);
    }
    keep.push(fps.length - 1);
    fps = keep.map((i) => fps[i]!);
    tps = keep.map((i) => tps[i]!);
    thr = keep.map((i) => thr[i]!);
  }
  const m = fps.length + 1;
  const fpr = new Float64Array(m);
  const tpr = new Float64Array(m);
  const thresholds = new Float64Array(m);
  const fLast = fps[fps.length - 1]!;
  const tLast = tps[tps.length - 1]!;
  if (fLast <= 0) throw new MetricError('roc_curve: no negative samples, false-positive rate is undefined');
  if (tLast <= 0) throw new MetricError('roc_curve: no positive samples, true-positive rate is undefined');
  thresholds[0] = Infinity;
  for (let i = 1; i < m; i++) {
    fpr[i] = fps[i - 1]! / fLast;
    tpr[i] = tps[i - 1]! / tLast;
    thresholds[i] = thr[i - 1]!;
  }
  return { fpr, tpr, thresholds };
}

/** `np.trapz(y, x)`: `sum(diff(x) * (y[1:] + y[:-1]) / 2)` with NumPy's pairwise sum. */
export function trapezoid(y: Vec, x: Vec): number {
  const n = Math.max(0, x.length - 1);
  const terms = new Float64Array(n);
  for (let i = 0; i < n; i++) terms[i] = ((x[i + 1]! - x[i]!) * (y[i + 1]! + y[i]!)) / 2.0;
  return npSum(terms);
}

/**
 * `sklearn.metrics.roc_auc_score(y_true, y_score)` for binary labels: trapezoid area under `rocCurve`.
 * Equals the Mann–Whitney statistic with tied scores counted one half (average ranks). Throws MetricError
 * when only one class is present, as sklearn raises ValueError ("Only one class present in y_true").
 */
export function rocAuc(yTrue: Vec, yScore: Vec): number {
  checkScores(yTrue, yScore, 'roc_auc');
  let pos = 0;
  for (let i = 0; i < yTrue.length; i++) pos += yTrue[i]!;
  if (pos === 0 || pos === yTrue.length) {
    throw new MetricError('roc_auc: only one class present in y_true; ROC AUC is not defined in that case');
  }
  const { fpr, tpr } = rocCurve(yTrue, yScore);
  return trapezoid(tpr, fpr);
}

/** `rocAuc`, or NaN where it is undefined (one class) — the reference's `try … except ValueError: nan`. */
export function rocAucOrNaN(yTrue: Vec, yScore: Vec): number {
  let pos = 0;
  for (let i = 0; i < yTrue.length; i++) pos += yTrue[i]!;
  if (yTrue.length > 0 && (pos === 0 || pos === yTrue.length)) return NaN;
  return rocAuc(yTrue, yScore);
}

/**
 * `roc_auc_score(Y, S, average='macro')` for a multilabel indicator matrix, given column by column: the
 * NumPy mean of the per-column AUCs. Throws MetricError if any column has one class (sklearn raises).
 */
export function macroRocAuc(yTrueCols: Vec[], yScoreCols: Vec[]): number {
  if (yTrueCols.length !== yScoreCols.length) throw new MetricError(`macro roc_auc: ${yTrueCols.length} label columns but ${yScoreCols.length} score columns`);
  const aucs = yTrueCols.map((y, c) => {
    try {
      return rocAuc(y, yScoreCols[c]!);
    } catch (e) {
      if (e instanceof MetricError) throw new MetricError(`column ${c}: ${e.message}`);
      throw e;
    }
  });
  return npMean(aucs);
}

// ---------------------------------------------------------------------------------------------------------
// Hard-prediction metrics (labels are small non-negative integers)

export interface Confusion2 {
  tn: number;
  fp: number;
  fn: number;
  tp: number;
}

/** 2×2 confusion counts for 0/1 labels and predictions. */
export function confusion2(yTrue: Vec, yPred: Vec): Confusion2 {
  if (yTrue.length !== yPred.length) throw new MetricError(`confusion: ${yTrue.length} labels but ${yPred.length} predictions`);
  checkBinary(yTrue, 'confusion');
  checkBinary(yPred, 'confusion (predictions)');
  const c = { tn: 0, fp: 0, fn: 0, tp: 0 };
  for (let i = 0; i < yTrue.length; i++) {
    if (yTrue[i] === 1) yPred[i] === 1 ? c.tp++ : c.fn++;
    else yPred[i] === 1 ? c.fp++ : c.tn++;
  }
  return c;
}

/** Per-label counts over the sorted union of labels present in y_true and y_pred (sklearn's label set). */
function perLabel(yTrue: Vec, yPred: Vec): { labels: number[]; tp: number[]; trueSum: number[]; predSum: number[] } {
  if (yTrue.length !== yPred.length) throw new MetricError(`${yTrue.length} labels but ${yPred.length} predictions`);
  if (yTrue.length === 0) throw new MetricError('no samples');
  const set = new Set<number>();
  for (let i = 0; i < yTrue.length; i++) {
    for (const v of [yTrue[i]!, yPred[i]!]) {
      if (!Number.isInteger(v) || v < 0) throw new MetricError(`class labels must be non-negative integers, got ${v}`);
      set.add(v);
    }
  }
  const labels = [...set].sort((a, b) => a - b);
  const at = new Map(labels.map((l, i) => [l, i]));
  const tp = labels.map(() => 0), trueSum = labels.map(() => 0), predSum = labels.map(() => 0);
  for (let i = 0; i < yTrue.length; i++) {
    const t = at.get(yTrue[i]!)!, p = at.get(yPred[i]!)!;
    trueSum[t]!++;
    predSum[p]!++;
    if (t === p) tp[t]!++;
  }
  return { labels, tp, trueSum, predSum };
}

/** `accuracy_score`: fraction of exact matches. */
export function accuracy(yTrue: Vec, yPred: Vec): number {
  if (yTrue.length !== yPred.length) throw new MetricError(`accuracy: ${yTrue.length} labels but ${yPred.length} predictions`);
  if (yTrue.length === 0) throw new MetricError('accuracy: no samples');
  let k = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) k++;
  return k / yTrue.length;
}

/**
 * `balanced_accuracy_score`: mean recall over the classes present in y_true (classes only predicted give
 * 0/0 and are dropped, as sklearn does with a warning).
 */
export function balancedAccuracy(yTrue: Vec, yPred: Vec): number {
  const { tp, trueSum } = perLabel(yTrue, yPred);
  const perClass: number[] = [];
  for (let i = 0; i < tp.length; i++) if (trueSum[i]! > 0) perClass.push(tp[i]! / trueSum[i]!);
  return npMean(perClass);
}

/**
 * `f1_score(average='weighted', zero_division=0)`: per-label F1 = 2·tp / (true + predicted) (sklearn ≥ 1.3
 * computes F from counts), averaged with the true counts as weights (`np.average`).
 */
export function weightedF1(yTrue: Vec, yPred: Vec): number {
  const { tp, trueSum, predSum } = perLabel(yTrue, yPred);
  const n = tp.length;
  const prod = new Float64Array(n);
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const denom = trueSum[i]! + predSum[i]!;
    const f = denom === 0 ? 0 : (2 * tp[i]!) / denom;
    prod[i] = f * trueSum[i]!;
    w[i] = trueSum[i]!;
  }
  return npSum(prod) / npSum(w);
}

/** `recall_score` (binary, positive label 1, zero_division=0): tp / (tp + fn). */
export function recall(yTrue: Vec, yPred: Vec): number {
  const c = confusion2(yTrue, yPred);
  return c.tp + c.fn === 0 ? 0 : c.tp / (c.tp + c.fn);
}

/** `precision_score` (binary, positive label 1, zero_division=0): tp / (tp + fp). */
export function precision(yTrue: Vec, yPred: Vec): number {
  const c = confusion2(yTrue, yPred);
  return c.tp + c.fp === 0 ? 0 : c.tp / (c.tp + c.fp);
}

/** `(score > t) ? 1 : 0` per sample (`>=` with `inclusive`). */
export function thresholdPredictions(yScore: Vec, t: number, inclusive = false): Int8Array {
  const out = new Int8Array(yScore.length);
  for (let i = 0; i < yScore.length; i++) out[i] = (inclusive ? yScore[i]! >= t : yScore[i]! > t) ? 1 : 0;
  return out;
}

/** Index of the first maximum (NumPy/PyTorch argmax tie rule). */
export function argmax(row: Vec): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Softmax in float64 with max subtraction. */
export function softmax(logits: Vec): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  const e = new Float64Array(logits.length);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += e[i] = Math.exp(logits[i]! - m);
  for (let i = 0; i < e.length; i++) e[i]! /= s;
  return e;
}

// ---------------------------------------------------------------------------------------------------------
// The fVLM threshold rule used by the HLIP chest-CT evaluations

export interface ThresholdChoice {
  /** The chosen grid value t*; predictions are `score > t*`. */
  threshold: number;
  /** sqrt((1 − TPR)² + FPR²) at t* (NaN when a rate was 0/0 everywhere). */
  distance: number;
}

/**
 * The reference's `find_threshold` (copied there from fVLM): over `t ∈ linspace(0, 1, 100)`, predictions
 * `score > t`, pick the t minimising sqrt((1 − TPR)² + FPR²); ties go to the LAST minimiser (`<=`); a 0/0 rate
 * gives NaN, which never wins (the start value 0 stays). Throws MetricError where the reference crashes:
 * when y_true holds one class and some grid t predicts that same class for every sample, sklearn's
 * confusion matrix is 1×1 and indexing [1, 1] raises IndexError.
 */
export function fvlmThreshold(yTrue: Vec, yScore: Vec): ThresholdChoice {
  checkScores(yTrue, yScore, 'find_threshold');
  let pos = 0;
  for (let i = 0; i < yTrue.length; i++) pos += yTrue[i]!;
  const single = pos === 0 || pos === yTrue.length ? (pos === 0 ? 0 : 1) : -1;
  let best = 0;
  let bestRoc = 10000;
  for (const t of linspace(0, 1, 100)) {
    let tp = 0, fp = 0, fn = 0, tn = 0, predPos = 0;
    for (let i = 0; i < yScore.length; i++) {
      const p = yScore[i]! > t;
      if (p) predPos++;
      if (yTrue[i] === 1) p ? tp++ : fn++;
      else p ? fp++ : tn++;
    }
    if (single >= 0 && (single === 1 ? predPos === yScore.length : predPos === 0)) {
      throw new MetricError(`find_threshold: y_true holds only class ${single} and threshold ${t} predicts it for every sample (the reference raises IndexError here)`);
    }
    const tpr = tp / (tp + fn);
    const fpr = fp / (fp + tn);
    const a = 1 - tpr;
    const roc = Math.sqrt(a * a + fpr * fpr);
    if (roc <= bestRoc) {
      bestRoc = roc;
      best = t;
    }
  }
  return { threshold: best, distance: bestRoc === 10000 ? NaN : bestRoc };
}
