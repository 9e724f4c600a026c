// Zero-shot evaluation of a model on a benchmark's cases (browser-safe core of `hlip eval --model`):
// shard selection, study embedding in chunks through a store (so a run can stop and resume), the
// reference's prompt classifiers and scores, and the score file in the reference results layout, whose
// metrics src/eval/score-metrics.ts computes exactly as for a score file given on the command line.
import { HlipError } from '../errors.js';
import type { Volume } from '../io/volume.js';
import { l2Normalize, mean } from '../ops/index.js';
import { noGrad, scope } from '../tensor/scope.js';
import { benchmarkInfo, type LabelTable, type PromptSet, type Protocol } from './benchmarks.js';
import { embedStudies, prepareStudy, type LoadedModel, type ModelData } from './infer.js';
import { readScan, type ScanReadSettings } from './layouts/scans.js';
import type { DataTree } from './layouts/tree.js';
import type { BenchStudy, ScanRef } from './layouts/types.js';
import { evaluateScores, parseScores, type ScoreEvalResult } from './score-metrics.js';
import { pairProbability } from './zeroshot.js';

// ---------------------------------------------------------------------------------------------------------
// Shards

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
}

/** `i/n` with 0 ≤ i < n. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count)) throw new HlipError('config', `--shard must be i/n with 0 ≤ i < n (e.g. 0/4), got '${text}'`);
  return { index, count };
}

/** Label rows of a shard: row r belongs to shard r mod n (deterministic, balanced across the file). */
export function shardRows(numRows: number, shard: Shard): number[] {
  const out: number[] = [];
  for (let r = shard.index; r < numRows; r += shard.count) out.push(r);
  return out;
}

/** Cases in label-file order (row, then key): the order of the score file, whatever the sharding. */
export function orderCases<T extends { row: number; key: string }>(cases: readonly T[]): T[] {
  return [...cases].sort((a, b) => a.row - b.row || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------------------
// Embedding

/** Where study embeddings are kept between runs. */
export interface EmbeddingStore {
  /** Every embedding stored so far, by case key. */
  load(): Promise<Map<string, Float32Array>>;
  /** Stores one chunk atomically (all of it or nothing). */
  append(keys: readonly string[], embeddings: readonly Float32Array[]): Promise<void>;
}

/** An in-memory store (tests, the browser). */
export class MemoryEmbeddingStore implements EmbeddingStore {
  readonly map = new Map<string, Float32Array>();
  chunks = 0;
  async load(): Promise<Map<string, Float32Array>> {
    return new Map(this.map);
  }
  async append(keys: readonly string[], embeddings: readonly Float32Array[]): Promise<void> {
    keys.forEach((k, i) => this.map.set(k, embeddings[i]!));
    this.chunks++;
  }
}

export interface StudyInputOptions {
  /** Preprocessing: the model's data description with the benchmark's pipeline (and any overrides). */
  data: ModelData;
  read: ScanReadSettings;
  /** 'all' (default): every scan of the study, as the reference evaluates; 'model': the model's numScans, sampled as evaluation does. */
  scans?: 'all' | 'model';
  /** Changes a volume after reading (e.g. CT-RATE's metadata rescale). */
  adjust?: (vol: Volume, scan: ScanRef, study: BenchStudy) => Volume;
}

/** One case's model input [S, D, H, W]. */
export async function prepareCase(tree: DataTree, study: BenchStudy, o: StudyInputOptions): Promise<{ images: Float32Array; shape: [number, number, number, number] }> {
  if (!study.scans.length) throw new HlipError('format', `study '${study.key}' has no scans`, { source: tree.name });
  const vols: Volume[] = [];
  for (const s of study.scans) {
    const v = await readScan(tree, s, o.read);
    vols.push(o.adjust ? o.adjust(v, s, study) : v);
  }
  const data = (o.scans ?? 'all') === 'all' ? { ...o.data, numScans: vols.length } : o.data;
  const { images, shape } = prepareStudy(vols, data);
  return { images, shape };
}

export interface EmbedCasesOptions extends StudyInputOptions {
  /** Studies per stored chunk (default 16): a kill loses at most one chunk's work. */
  chunkSize?: number;
  /** Studies per image-tower batch when their shapes agree (default 1, the reference's batch size). */
  batchSize?: number;
  /** Stop after storing this many chunks (time-boxing, tests); the rest is done by the next run. */
  maxChunks?: number;
  onProgress?: (p: { done: number; total: number; key: string; cached: number }) => void;
  /** After each stored chunk. */
  onChunk?: (p: { chunks: number; done: number; total: number }) => void;
}

export interface EmbedCasesResult {
  /** Embedded in this run. */
  embedded: number;
  /** Found in the store (skipped). */
  cached: number;
  /** Still without an embedding (maxChunks reached). */
  remaining: number;
  chunks: number;
}

/** Embeds every case not yet in `store`, `chunkSize` at a time, each chunk stored before the next starts. */
export async function embedCases(m: LoadedModel, tree: DataTree, cases: readonly BenchStudy[], store: EmbeddingStore, o: EmbedCasesOptions): Promise<EmbedCasesResult> {
  const have = await store.load();
  const todo = cases.filter((c) => !have.has(c.key));
  const cached = cases.length - todo.length;
  const chunkSize = Math.max(1, o.chunkSize ?? 16);
  const bs = Math.max(1, o.batchSize ?? 1);
  let chunks = 0;
  let embedded = 0;
  for (let c0 = 0; c0 < todo.length; c0 += chunkSize) {
    if (o.maxChunks !== undefined && chunks >= o.maxChunks) break;
    const chunk = todo.slice(c0, c0 + chunkSize);
    const embs: Float32Array[] = [];
    // Consecutive studies of one shape go through the tower together (up to bs).
    let group: { images: Float32Array; shape: number[] }[] = [];
    const flush = async () => {
      if (!group.length) return;
      embs.push(...(await embedStudies(m, group.map((g) => g.images), group[0]!.shape, { batchSize: bs })));
      group = [];
    };
    for (const st of chunk) {
      const x = await prepareCase(tree, st, o);
      if (group.length && (group.length >= bs || group[0]!.shape.some((d, i) => d !== x.shape[i]))) await flush();
      group.push(x);
      o.onProgress?.({ done: cached + embedded + embs.length + group.length, total: cases.length, key: st.key, cached });
    }
    await flush();
    await store.append(chunk.map((s) => s.key), embs);
    embedded += chunk.length;
    chunks++;
    o.onChunk?.({ chunks, done: cached + embedded, total: cases.length });
  }
  return { embedded, cached, remaining: todo.length - embedded, chunks };
}

// ---------------------------------------------------------------------------------------------------------
// Prompts and scores

export interface PromptEmbeddings {
  /** Per classifier column: "<class>" or, for prompt pairs, "<class>/negative" and "<class>/positive". */
  names: string[];
  texts: string[][];
  /** Row-major [K, E]: each row the normalised mean of its texts' normalised embeddings. */
  weights: Float32Array;
  dim: number;
}

/**
 * The reference classifier of a prompt set (open_clip build_zero_shot_classifier): per column, its texts
 * (templates) encoded and normalised, averaged, renormalised. Texts are used exactly as given (the
 * benchmark prompts carry their own "This study shows:" wording; no report prefix is added).
 */
export async function promptEmbeddings(m: LoadedModel, columns: readonly { name: string; texts: readonly string[] }[]): Promise<PromptEmbeddings> {
  if (!columns.length) throw new HlipError('config', 'no prompts to embed');
  const rows: Float32Array[] = [];
  m.model.eval();
  for (const col of columns) {
    if (!col.texts.length) throw new HlipError('config', `prompt column '${col.name}' has no text`);
    const t = scope(() =>
      noGrad(() => {
        const e = m.model.encodeText(m.tokenizer.encodeBatch([...col.texts]), { normalize: true });
        return l2Normalize(mean(e, 0), -1);
      }),
    );
    rows.push((await t.data()) as Float32Array);
    t.dispose();
  }
  const dim = rows[0]!.length;
  const weights = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => weights.set(r, i * dim));
  return { names: columns.map((c) => c.name), texts: columns.map((c) => [...c.texts]), weights, dim };
}

/** The classifier columns of a benchmark prompt set, in class order (pairs: negative then positive). */
export function promptColumns(set: PromptSet): { name: string; texts: string[] }[] {
  return set.classes.flatMap((c) =>
    set.scoring === 'pair-softmax'
      ? [{ name: `${c.name}/negative`, texts: c.columns[0]! }, { name: `${c.name}/positive`, texts: c.columns[1]! }]
      : [{ name: c.name, texts: c.columns[0]! }],
  );
}

/** exp(logit_scale) of the model. */
export async function logitScale(m: LoadedModel): Promise<number> {
  return Math.exp(await m.model.logitScaleParam.item());
}

/**
 * Per-case scores as the reference computes them from normalised embeddings, in float64:
 * pair-softmax: softmax(s·[f·w_neg, f·w_pos])[1]; cosine: f·w; scaled-logits: s·f·w.
 * Returns one row per embedding, one value per class of `set`.
 */
export function scoreEmbeddings(embeddings: readonly Float32Array[], prompts: PromptEmbeddings, set: PromptSet, scale: number): Float64Array[] {
  const E = prompts.dim;
  const W = prompts.weights;
  const dot = (f: Float32Array, k: number) => {
    let acc = 0;
    for (let e = 0; e < E; e++) acc += f[e]! * W[k * E + e]!;
    return acc;
  };
  return embeddings.map((f) => {
    if (f.length !== E) throw new HlipError('shape', `a study embedding has ${f.length} values, the text embeddings ${E}`);
    return Float64Array.from(set.classes, (_, c) => {
      if (set.scoring === 'pair-softmax') return pairProbability(scale * dot(f, 2 * c), scale * dot(f, 2 * c + 1));
      const cos = dot(f, c);
      return set.scoring === 'cosine' ? cos : scale * cos;
    });
  });
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Score file text in the reference results layout: id column, then one column per class. */
export function scoreCsv(idColumn: string, set: PromptSet, keys: readonly string[], scores: readonly Float64Array[]): string {
  const lines = [[idColumn, ...set.classes.map((c) => c.name)].map(csvField).join(',')];
  keys.forEach((k, i) => lines.push([csvField(k), ...Array.from(scores[i]!, (v) => String(v))].join(',')));
  return lines.join('\n') + '\n';
}

/** File-name tag of a run's outputs: the 2025 chest-CT template (as the reference's logits_<template>.csv), else the protocol. */
export function resultsTag(set: PromptSet, ctTemplate?: string): string {
  return set.scoring === 'pair-softmax' ? (ctTemplate ?? 'volume') : set.protocol;
}

export interface ScoredRun {
  csv: string;
  result: ScoreEvalResult;
}

/**
 * Scores and metrics from embeddings: writes the score CSV text, then parses it back and computes the
 * metrics with the same code as `hlip eval --scores` (Pub-Brain-5: the columns are scaled logits).
 */
export function scoreAndEvaluate(labels: LabelTable, set: PromptSet, prompts: PromptEmbeddings, scale: number, cases: readonly { key: string }[], embeddings: readonly Float32Array[], opts: { protocol: Protocol; csvName: string; roc?: boolean }): ScoredRun {
  const info = benchmarkInfo(set.benchmark);
  const scores = scoreEmbeddings(embeddings, prompts, set, scale);
  const csv = scoreCsv(info.idColumn, set, cases.map((c) => c.key), scores);
  const table = parseScores(csv, opts.csvName);
  const result = evaluateScores(set.benchmark, labels, table, { protocol: opts.protocol, roc: opts.roc ?? false, ...(set.benchmark === 'pub-brain-5' ? { scoreKind: 'logits' as const } : {}) });
  return { csv, result };
}
