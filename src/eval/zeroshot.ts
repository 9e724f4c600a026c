// Zero-shot evaluation of a CLIP model on a study dataset with one (negative, positive) prompt pair per
// finding, HLIP's prompt-pair rule: p(finding) = softmax(s·[f·t_neg, f·t_pos])[1]. Browser-safe.
import { HlipError } from '../errors.js';
import type { StudyDataset } from '../data/dataset.js';
import type { CustomTextCLIP, TextTokenizer } from '../models/clip.js';
import { noGrad, scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { rocAucOrNaN, rocCurve, type RocCurve } from './metrics.js';

export interface FindingPrompt {
  name: string;
  positive: string;
  negative: string;
}

export interface ZeroShotScores {
  studyIds: string[];
  findings: string[];
  /** scores[f][i]: probability of finding f for study i. */
  scores: Float64Array[];
}

export interface ZeroShotOptions {
  batchSize?: number;
  /** Applied to every prompt (e.g. the training report prefix); default identity. */
  template?: (prompt: string) => string;
  onProgress?: (done: number, total: number) => void;
}

/** softmax([neg, pos])[1] for one prompt pair's logits, in float64 (HLIP's prompt-pair rule). */
export function pairProbability(neg: number, pos: number): number {
  return 1 / (1 + Math.exp(neg - pos));
}

/** Prompt pairs from the `prompts.json` layout `{finding: {positive, negative}}`. */
export function parsePrompts(json: unknown, source: string): FindingPrompt[] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new HlipError('format', `${source}: prompts must be an object {finding: {positive, negative}}`);
  const out: FindingPrompt[] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    const p = v as Record<string, unknown> | null;
    if (!p || typeof p['positive'] !== 'string' || typeof p['negative'] !== 'string') throw new HlipError('format', `${source}: finding '${name}' needs string 'positive' and 'negative' prompts`);
    out.push({ name, positive: p['positive'], negative: p['negative'] });
  }
  if (!out.length) throw new HlipError('format', `${source}: no findings`);
  return out;
}

/** Scores every study of `dataset` (use an eval-mode dataset) for every finding. */
export async function zeroShotScores(model: CustomTextCLIP, tokenizer: TextTokenizer, dataset: StudyDataset, prompts: readonly FindingPrompt[], opts: ZeroShotOptions = {}): Promise<ZeroShotScores> {
  const bs = opts.batchSize ?? 8;
  const tpl = opts.template ?? ((s: string) => s);
  const pairs = prompts.map((p) => [tpl(p.negative), tpl(p.positive)] as const);
  const F = prompts.length;
  const N = dataset.length;
  const scores = prompts.map(() => new Float64Array(N));
  const studyIds: string[] = [];
  const dev = model.device;
  model.eval();
  // The classifier depends only on the prompts: encode it once.
  const classifier = noGrad(() => model.zeroShotClassifier(tokenizer, pairs.flat()));
  try {
    for (let i0 = 0; i0 < N; i0 += bs) {
      const items = await Promise.all(Array.from({ length: Math.min(bs, N - i0) }, (_, j) => dataset.get(i0 + j)));
      const [S, D, H, W] = items[0]!.shape;
      const vox = S * D * H * W;
      const img = new Float32Array(items.length * vox);
      items.forEach((it, j) => {
        if (it.images.length !== vox) throw new HlipError('shape', `study ${it.studyId}: ${it.images.length} voxels, expected ${vox}`);
        img.set(it.images, j * vox);
        studyIds.push(it.studyId);
      });
      const probs = scope(() =>
        noGrad(() => {
          const x = Tensor.from(dev, img, [items.length, S, 1, D, H, W]);
          const f = model.encodeImage(x, { normalize: true });
          const logits = model.zeroShotLogits(f, classifier); // [b, 2F]: (neg, pos) per finding
          return logits.detach();
        }),
      );
      const l = (await probs.data()) as Float32Array;
      probs.dispose();
      for (let j = 0; j < items.length; j++) {
        for (let f = 0; f < F; f++) {
          (scores[f] as Float64Array)[i0 + j] = pairProbability(l[j * 2 * F + 2 * f] as number, l[j * 2 * F + 2 * f + 1] as number);
        }
      }
      opts.onProgress?.(Math.min(i0 + bs, N), N);
    }
  } finally {
    classifier.dispose();
  }
  return { studyIds, findings: prompts.map((p) => p.name), scores };
}

export interface FindingResult {
  auc: number;
  roc: RocCurve;
  positives: number;
  negatives: number;
}

/** Per-finding AUC and ROC curve from scores and `labels[finding][studyId]` (0/1). */
export function scoreFindings(s: ZeroShotScores, labels: ReadonlyMap<string, ReadonlyMap<string, number>>): { perClass: Record<string, FindingResult>; macroAuc: number } {
  const perClass: Record<string, FindingResult> = {};
  const aucs: number[] = [];
  s.findings.forEach((f, k) => {
    const col = labels.get(f);
    if (!col) throw new HlipError('format', `labels have no column for finding '${f}'`);
    const y = s.studyIds.map((id) => {
      const v = col.get(id);
      if (v === undefined) throw new HlipError('format', `labels have no row for study '${id}'`);
      return v;
    });
    const sc = s.scores[k] as Float64Array;
    const auc = rocAucOrNaN(y, sc);
    const pos = y.filter((v) => v === 1).length;
    // A one-class split has no ROC curve; the chance diagonal stands in (its AUC is reported as NaN).
    const roc = pos > 0 && pos < y.length ? rocCurve(y, sc) : { fpr: Float64Array.of(0, 1), tpr: Float64Array.of(0, 1), thresholds: Float64Array.of(Infinity, -Infinity) };
    perClass[f] = { auc, roc, positives: pos, negatives: y.length - pos };
    if (Number.isFinite(auc)) aucs.push(auc);
  });
  return { perClass, macroAuc: aucs.length ? aucs.reduce((a, b) => a + b, 0) / aucs.length : NaN };
}

/** Labels CSV (CT-RATE style: id column, then one 0/1 column per finding) → finding → id → label. */
export function labelsFromCsv(header: readonly string[], rows: readonly (readonly string[])[], source: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  header.slice(1).forEach((h) => out.set(h, new Map()));
  rows.forEach((r, i) => {
    const id = r[0] ?? '';
    header.slice(1).forEach((h, j) => {
      const v = Number(r[j + 1]);
      if (v !== 0 && v !== 1) throw new HlipError('format', `${source}: line ${i + 2}, column '${h}': label must be 0 or 1, got '${r[j + 1] ?? ''}'`);
      out.get(h)!.set(id, v);
    });
  });
  return out;
}
