// `hlip eval --model … --data …` and `hlip embed`: model loading, the benchmark's files, the on-disk
// embedding cache (resume, shards, merge) and the result files. The evaluation itself is
// src/eval/eval-run.ts; the metrics are src/eval/score-metrics.ts, as for `hlip eval --scores`.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { HlipError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import type { ScanPipeline } from '../data/dataset.js';
import type { Manifest } from '../data/manifest.js';
import { defaultProtocol, parseLabels, zeroShotPrompts, type BenchmarkName, type CtTemplate2025, type LabelTable, type Protocol } from '../eval/benchmarks.js';
import {
  embedCases, logitScale, MemoryEmbeddingStore, orderCases, promptColumns, promptEmbeddings, resultsTag, scoreAndEvaluate, shardRows,
  type EmbedCasesOptions, type Shard,
} from '../eval/eval-run.js';
import { pipelineOf, promptTemplate, type LoadedModel, type ModelData } from '../eval/infer.js';
import { BENCHMARK_LAYOUTS, findScans, parseCtRateMetadata, readBenchmarkLayout, type BenchStudy, type DataTree, type RsnaIndex, type ScanReadSettings } from '../eval/layouts/index.js';
import { fileScan } from '../eval/layouts/scans.js';
import type { ScoreEvalResult } from '../eval/score-metrics.js';
import { parsePrompts } from '../eval/zeroshot.js';
import { writeFileAtomic, writeSafetensorsFile } from '../io/node-files.js';
import type { Volume } from '../io/volume.js';
import { nodeDataTree } from '../node/data-tree.js';
import { readManifestFile } from '../node/dataset.js';
import { DiskEmbeddingStore, readShardStatuses, shardTag, writeShardStatus, type ShardStatus } from '../node/embedding-store.js';
import { createNodeDevice } from '../node/gpu.js';
import { loadModelFile } from '../node/model.js';

/** Injected by tests (one device per process); the CLI creates its own. */
export interface CliEnv {
  device?: Device;
}

export async function cliDevice(env: CliEnv): Promise<Device> {
  return env.device ?? createNodeDevice();
}

export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new HlipError('io', `cannot read the ${what} file: ${(e as Error).message}`, { source: path, cause: e });
  }
}

export interface ModelOptions {
  model: string;
  /** Tokenizer spec overriding the file's: 'bert-base-uncased' or a vocab.txt / tokenizer.json path. */
  tokenizer?: string;
  /** Model grid override [D, H, W] (e.g. the reference's 144 slices for Pub-Brain-5 2025). */
  shape?: [number, number, number];
}

function tokenizerSpec(t: string): unknown {
  if (t === 'bert-base-uncased') return t;
  return /\.json$/i.test(t) ? { tokenizer_json: resolve(t) } : { vocab: resolve(t) };
}

/** Loads a model file (safetensors model or training checkpoint) for inference (src/node/model.ts). */
export async function openModel(dev: Device, o: ModelOptions): Promise<LoadedModel> {
  return loadModelFile(dev, o.model, {
    ...(o.tokenizer ? { tokenizerSpec: tokenizerSpec(o.tokenizer) } : {}),
    ...(o.shape ? { data: { shape: o.shape } } : {}),
  });
}

async function fileHash(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch (e) {
    throw new HlipError('io', `cannot read: ${(e as Error).message}`, { source: path, cause: e });
  }
  return h.digest('hex');
}

export function parseTriple(name: string, v: string): [number, number, number] {
  const p = v.split(/[,x×]/).map((s) => Number(s.trim()));
  if (p.length !== 3 || !p.every((n) => Number.isInteger(n) && n > 0)) throw new HlipError('config', `--${name} must be three positive integers D,H,W, got '${v}'`);
  return p as [number, number, number];
}

export function parseWindow(v: string): [number, number] {
  const p = v.split(',').map((s) => Number(s.trim()));
  if (p.length !== 2 || !p.every(Number.isFinite) || !(p[1]! > p[0]!)) throw new HlipError('config', `--window must be lo,hi in HU with lo < hi, got '${v}'`);
  return p as [number, number];
}

// ---------------------------------------------------------------------------------------------------------
// A benchmark's data: labels, layout, preprocessing

export interface DataOptions {
  benchmark: BenchmarkName;
  data: string;
  labels?: string;
  /** Our study-manifest layout instead of the public one. */
  manifest?: string;
  skipMissing?: boolean;
  scans?: 'all' | 'model';
  /** CT HU window [lo, hi] (CT pipelines). */
  window?: [number, number];
  /** CT-RATE: the metadata CSV whose slope/intercept/spacing the reference's process.py applies. */
  ctMetadata?: string;
}

export interface BenchmarkData {
  tree: DataTree;
  labels: LabelTable;
  labelsPath: string;
  manifest: Manifest | null;
  read: ScanReadSettings;
  /** Preprocessing of one scan (before the model's grid is known). */
  pipeline(m: LoadedModel): ScanPipeline;
  adjust?: (vol: Volume, scan: { name: string }) => Volume;
  /** What changes the embeddings, for the cache fingerprint. */
  identity: Record<string, unknown>;
}

export async function openBenchmarkData(o: DataOptions): Promise<BenchmarkData> {
  const spec = BENCHMARK_LAYOUTS[o.benchmark];
  const tree = nodeDataTree(o.data);
  if ((await tree.stat(''))?.kind !== 'dir') throw new HlipError('io', 'the data root is not a folder', { source: resolve(o.data) });
  let labelsPath = o.labels;
  if (!labelsPath) {
    for (const f of spec.labelFiles) if ((await tree.stat(f))?.kind === 'file') { labelsPath = join(o.data, f); break; }
    if (!labelsPath) throw new HlipError('config', `no label file found under ${tree.name} (looked for ${spec.labelFiles.join(', ')}); pass --labels <file.csv>`);
  }
  const labels = parseLabels(o.benchmark, await readText(labelsPath, 'labels'), labelsPath);
  const manifest = o.manifest ? await readManifestFile(o.manifest) : null;
  const read = manifest ? {} : spec.read;
  const identity: Record<string, unknown> = { benchmark: o.benchmark, layout: manifest ? 'manifest' : 'public', read, scans: o.scans ?? 'all' };
  let adjust: BenchmarkData['adjust'];
  if (o.ctMetadata) {
    if (o.benchmark !== 'ct-rate') throw new HlipError('config', '--ct-metadata applies to ct-rate only');
    const meta = parseCtRateMetadata(await readText(o.ctMetadata, 'CT-RATE metadata'), o.ctMetadata);
    identity['ct_metadata'] = await fileHash(o.ctMetadata);
    adjust = (vol, scan) => {
      const v = meta.get(scan.name);
      if (!v) throw new HlipError('format', `no row for '${scan.name}' in the CT-RATE metadata ${o.ctMetadata}`, { source: vol.source });
      const data = new Float32Array(vol.data.length);
      for (let i = 0; i < data.length; i++) data[i] = Math.fround(vol.data[i]! * v.slope + v.intercept);
      return { ...vol, data, spacing: [...v.spacing] };
    };
  }
  const window = o.window;
  const pipeline = (m: LoadedModel): ScanPipeline => {
    const p = manifest ? pipelineOf(m.data) : spec.pipeline;
    if (window) {
      if (p.kind !== 'ct') throw new HlipError('config', `--window applies to CT pipelines; ${o.benchmark} scans are preprocessed as ${p.kind}`);
      return { ...p, window };
    }
    return p;
  };
  return { tree, labels, labelsPath, manifest, read, pipeline, ...(adjust ? { adjust } : {}), identity };
}

/** The model's data description with the benchmark's preprocessing. */
export function benchmarkModelData(m: LoadedModel, bd: BenchmarkData): ModelData {
  return { ...m.data, pipeline: bd.pipeline(m) };
}

/** The RSNA flat-folder index, kept in the cache folder (building it reads every slice header once). */
function rsnaIndexStore(dir: string): { load(): Promise<RsnaIndex | null>; save(i: RsnaIndex): Promise<void> } {
  const path = join(dir, 'rsna-index.json');
  return {
    load: async () => {
      try {
        return JSON.parse(await readFile(path, 'utf8')) as RsnaIndex;
      } catch {
        return null;
      }
    },
    save: async (i) => {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(i)));
    },
  };
}

export async function resolveCases(bd: BenchmarkData, o: DataOptions, rows: readonly number[] | undefined, cacheRoot: string | null) {
  return readBenchmarkLayout(o.benchmark, bd.tree, bd.labels, {
    ...(rows ? { rows } : {}),
    skipMissing: o.skipMissing ?? false,
    ...(bd.manifest ? { manifest: bd.manifest } : {}),
    ...(cacheRoot ? { rsna: { indexStore: rsnaIndexStore(cacheRoot) } } : {}),
  });
}

/** Cache folder of one (model, data, preprocessing) combination below `root`. */
export async function cacheFolder(root: string, modelPath: string, m: LoadedModel, bd: BenchmarkData): Promise<{ dir: string; fingerprint: Record<string, unknown> }> {
  const fingerprint = { v: 1, model: await fileHash(modelPath), ...bd.identity, data: benchmarkModelData(m, bd) };
  const id = createHash('sha256').update(JSON.stringify(fingerprint)).digest('hex').slice(0, 16);
  return { dir: join(root, `${bd.identity['benchmark']}-${id}`), fingerprint };
}

/** A progress line on a terminal; one line per stored chunk otherwise (logs of long runs). */
function progress(label: string, quiet: boolean): Pick<EmbedCasesOptions, 'onProgress' | 'onChunk'> {
  if (quiet) return {};
  if (!process.stderr.isTTY) return { onChunk: (p) => process.stderr.write(`${label}: ${p.done}/${p.total} studies embedded (chunk ${p.chunks} stored)\n`) };
  return { onProgress: (p) => process.stderr.write(`\r${label}: ${p.done}/${p.total} studies (${p.cached} cached) ${p.key.slice(-40)}   `) };
}

// ---------------------------------------------------------------------------------------------------------
// hlip eval --model

export interface ModelEvalArgs extends DataOptions, ModelOptions {
  protocol?: Protocol;
  ctTemplate?: CtTemplate2025;
  shard?: Shard;
  cache?: string;
  out?: string;
  merge: boolean;
  chunk?: number;
  batchSize?: number;
  maxChunks?: number;
  roc: boolean;
  quiet: boolean;
}

export interface ModelEvalOutcome {
  /** 'done': scores and metrics written; 'partial': this shard has studies left (--max-chunks); 'waiting': other shards are not done. */
  status: 'done' | 'partial' | 'waiting';
  shard: Shard;
  embedded: number;
  cached: number;
  remaining: number;
  missing: number;
  cacheDir: string;
  /** Shards not yet complete ('waiting'). */
  pending?: number[];
  scoresPath?: string;
  resultsPath?: string;
  result?: ScoreEvalResult & { run: Record<string, unknown> };
}

export function defaultOutDir(benchmark: string, modelPath: string): string {
  return join('results', benchmark, basename(modelPath).replace(/\.(safetensors|pt|pth|bin)$/i, ''));
}

export async function runModelEval(a: ModelEvalArgs, env: CliEnv = {}): Promise<ModelEvalOutcome> {
  const protocol = a.protocol ?? defaultProtocol(a.benchmark);
  const set = zeroShotPrompts(a.benchmark, protocol, a.ctTemplate ? { ctTemplate: a.ctTemplate } : {});
  const shard = a.shard ?? { index: 0, count: 1 };
  const out = a.out ?? defaultOutDir(a.benchmark, a.model);
  const bd = await openBenchmarkData(a);
  const dev = await cliDevice(env);
  const m = await openModel(dev, a);
  try {
    const cacheRoot = resolve(a.cache ?? join(out, 'cache'));
    const { dir, fingerprint } = await cacheFolder(cacheRoot, a.model, m, bd);
    const store = new DiskEmbeddingStore(dir, shardTag(shard), { 'hlip.fingerprint': JSON.stringify(fingerprint) });
    let embedded = 0, cached = 0, remaining = 0, missing = 0;
    if (!a.merge) {
      const layout = await resolveCases(bd, a, shardRows(bd.labels.ids.length, shard), cacheRoot);
      missing = layout.missing.length;
      const status: ShardStatus = { shard, cases: layout.studies.map((s) => ({ row: s.row, key: s.key })), missing: layout.missing, complete: false };
      await writeShardStatus(dir, status);
      const r = await embedCases(m, bd.tree, layout.studies, store, {
        data: benchmarkModelData(m, bd), read: bd.read, scans: a.scans ?? 'all',
        ...(bd.adjust ? { adjust: bd.adjust } : {}),
        ...(a.chunk ? { chunkSize: a.chunk } : {}), ...(a.batchSize ? { batchSize: a.batchSize } : {}),
        ...(a.maxChunks !== undefined ? { maxChunks: a.maxChunks } : {}),
        ...progress(`${a.benchmark} shard ${shard.index}/${shard.count}`, a.quiet),
      });
      if (!a.quiet && process.stderr.isTTY) process.stderr.write('\n');
      ({ embedded, cached, remaining } = r);
      if (remaining === 0) await writeShardStatus(dir, { ...status, complete: true });
      if (remaining > 0) return { status: 'partial', shard, embedded, cached, remaining, missing, cacheDir: dir };
    }
    const statuses = await readShardStatuses(dir, shard.count);
    const pending = statuses.map((s, i) => (s?.complete ? -1 : i)).filter((i) => i >= 0);
    if (pending.length) {
      if (a.merge) throw new HlipError('config', `cannot merge: shard(s) ${pending.map((i) => `${i}/${shard.count}`).join(', ')} of ${dir} are not complete (run them first)`);
      return { status: 'waiting', shard, embedded, cached, remaining, missing, cacheDir: dir, pending };
    }
    const done = statuses as ShardStatus[];
    const cases = orderCases(done.flatMap((s) => s.cases));
    const stored = await store.load();
    const lost = cases.filter((c) => !stored.has(c.key));
    if (lost.length) throw new HlipError('format', `${lost.length} case(s) marked done have no cached embedding (e.g. '${lost[0]!.key}'); delete ${dir} and run again`, { source: dir });
    const prompts = await promptEmbeddings(m, promptColumns(set));
    const scale = await logitScale(m);
    const tag = resultsTag(set, a.ctTemplate);
    await mkdir(out, { recursive: true });
    const scoresPath = join(out, `logits_${tag}.csv`);
    const resultsPath = join(out, `results_${tag}.json`);
    const scored = scoreAndEvaluate(bd.labels, set, prompts, scale, cases, cases.map((c) => stored.get(c.key)!), { protocol, csvName: scoresPath, roc: a.roc });
    const missingAll = done.reduce((n, s) => n + s.missing.length, 0);
    const result = {
      ...scored.result,
      labels: bd.labelsPath,
      run: {
        model: a.model, data: resolve(a.data), layout: bd.manifest ? 'manifest' : 'public', scoring: set.scoring, logit_scale: scale,
        shards: shard.count, cache: dir, n_missing: missingAll, missing: done.flatMap((s) => s.missing).slice(0, 100),
        data_config: benchmarkModelData(m, bd), scans: a.scans ?? 'all',
      },
    };
    await writeFileAtomic(scoresPath, new TextEncoder().encode(scored.csv));
    await writeFile(resultsPath, JSON.stringify(result) + '\n');
    return { status: 'done', shard, embedded, cached, remaining, missing: missingAll, cacheDir: dir, scoresPath, resultsPath, result };
  } finally {
    m.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------
// hlip embed

export interface EmbedArgs extends ModelOptions {
  out: string;
  /** Benchmark data (with `data`), or study folders. */
  benchmark?: BenchmarkName;
  data?: string;
  labels?: string;
  manifest?: string;
  skipMissing?: boolean;
  studies: string[];
  /** prompts.json ({finding: {positive, negative}}) or a text file of one prompt per line. */
  prompts?: string;
  protocol?: Protocol;
  ctTemplate?: CtTemplate2025;
  scans?: 'all' | 'model';
  window?: [number, number];
  cache?: string;
  chunk?: number;
  quiet: boolean;
}

export interface EmbedOutcome {
  out: string;
  studies: number;
  prompts: number;
  dim: number;
}

async function promptSpec(a: EmbedArgs, m: LoadedModel): Promise<{ columns: { name: string; texts: string[] }[]; meta: Record<string, string> }> {
  if (a.prompts) {
    const text = await readText(a.prompts, 'prompts');
    if (/\.json$/i.test(a.prompts)) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new HlipError('format', `prompts are not valid JSON: ${(e as Error).message}`, { source: a.prompts, cause: e });
      }
      const tpl = promptTemplate(m);
      const pairs = parsePrompts(json, a.prompts);
      return { columns: pairs.flatMap((p) => [{ name: `${p.name}/negative`, texts: [tpl(p.negative)] }, { name: `${p.name}/positive`, texts: [tpl(p.positive)] }]), meta: { 'hlip.prompts_source': a.prompts } };
    }
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
    if (!lines.length) throw new HlipError('format', 'no prompt lines', { source: a.prompts });
    return { columns: lines.map((l) => ({ name: l, texts: [l] })), meta: { 'hlip.prompts_source': a.prompts } };
  }
  if (a.benchmark) {
    const protocol = a.protocol ?? defaultProtocol(a.benchmark);
    const set = zeroShotPrompts(a.benchmark, protocol, a.ctTemplate ? { ctTemplate: a.ctTemplate } : {});
    return { columns: promptColumns(set), meta: { 'hlip.protocol': protocol, 'hlip.scoring': set.scoring } };
  }
  if (m.prompts) {
    const tpl = promptTemplate(m);
    return { columns: m.prompts.flatMap((p) => [{ name: `${p.name}/negative`, texts: [tpl(p.negative)] }, { name: `${p.name}/positive`, texts: [tpl(p.positive)] }]), meta: { 'hlip.prompts_source': 'model' } };
  }
  return { columns: [], meta: {} };
}

/** Study folders given on the command line as cases over the file-system root. */
async function folderCases(folders: readonly string[]): Promise<{ tree: DataTree; cases: BenchStudy[] }> {
  const tree = nodeDataTree('/');
  const cases: BenchStudy[] = [];
  for (const [i, f] of folders.entries()) {
    const rel = resolve(f).replace(/^\/+/, '');
    const st = await tree.stat(rel);
    if (!st) throw new HlipError('io', 'no such study folder or file', { source: f });
    const scans = st.kind === 'file' ? [fileScan(rel)] : await findScans(tree, rel);
    if (!scans.length) throw new HlipError('format', 'no NIfTI file or DICOM series in this study folder', { source: f });
    cases.push({ id: basename(resolve(f)), key: f, row: i, scans });
  }
  return { tree, cases };
}

export async function runEmbed(a: EmbedArgs, env: CliEnv = {}): Promise<EmbedOutcome> {
  if (a.benchmark && a.data && a.studies.length) throw new HlipError('config', 'give either --data with --benchmark or study folders, not both');
  if (!a.data && !a.studies.length) throw new HlipError('config', 'nothing to embed: give --data <root> --benchmark <name>, or study folders');
  if (a.data && !a.benchmark) throw new HlipError('config', '--data needs --benchmark (which layout and label file to read)');
  const dev = await cliDevice(env);
  const m = await openModel(dev, a);
  try {
    let tree: DataTree;
    let cases: BenchStudy[];
    let opts: EmbedCasesOptions;
    let dataMeta: Record<string, string> = {};
    let cacheDir: string | null = null;
    if (a.data && a.benchmark) {
      const d: DataOptions = { benchmark: a.benchmark, data: a.data, ...(a.labels ? { labels: a.labels } : {}), ...(a.manifest ? { manifest: a.manifest } : {}), skipMissing: a.skipMissing ?? false, scans: a.scans ?? 'all', ...(a.window ? { window: a.window } : {}) };
      const bd = await openBenchmarkData(d);
      const layout = await resolveCases(bd, d, undefined, a.cache ? resolve(a.cache) : null);
      tree = bd.tree;
      cases = orderCases(layout.studies);
      opts = { data: benchmarkModelData(m, bd), read: bd.read, scans: a.scans ?? 'all' };
      if (a.cache) cacheDir = (await cacheFolder(resolve(a.cache), a.model, m, bd)).dir;
      dataMeta = { 'hlip.benchmark': a.benchmark, 'hlip.labels': bd.labelsPath, 'hlip.missing': JSON.stringify(layout.missing) };
    } else {
      ({ tree, cases } = await folderCases(a.studies));
      const data = a.window ? { ...m.data, pipeline: { ...pipelineOf(m.data), window: a.window } as ScanPipeline } : m.data;
      opts = { data, read: {}, scans: a.scans ?? 'model' };
    }
    const store = cacheDir ? new DiskEmbeddingStore(cacheDir, 'embed') : new MemoryEmbeddingStore();
    await embedCases(m, tree, cases, store, { ...opts, ...(a.chunk ? { chunkSize: a.chunk } : {}), ...progress('embed', a.quiet) });
    if (!a.quiet && process.stderr.isTTY) process.stderr.write('\n');
    const stored = await store.load();
    const embs = cases.map((c) => stored.get(c.key)!);
    const E = embs[0]!.length;
    const studyData = new Float32Array(cases.length * E);
    embs.forEach((e, i) => studyData.set(e, i * E));
    const ps = await promptSpec(a, m);
    const scale = await logitScale(m);
    const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [['study_embeddings', { dtype: 'F32', shape: [cases.length, E], data: studyData }]];
    let promptNames: string[] = [];
    if (ps.columns.length) {
      const p = await promptEmbeddings(m, ps.columns);
      tensors.push(['prompt_embeddings', { dtype: 'F32', shape: [p.names.length, p.dim], data: p.weights }]);
      promptNames = p.names;
    }
    tensors.push(['logit_scale', { dtype: 'F32', shape: [], data: Float32Array.of(scale) }]);
    await mkdir(dirname(resolve(a.out)), { recursive: true });
    await writeSafetensorsFile(a.out, tensors, {
      format: 'hlip-embeddings',
      'hlip.model': a.model,
      'hlip.study_keys': JSON.stringify(cases.map((c) => c.key)),
      'hlip.study_ids': JSON.stringify(cases.map((c) => c.id)),
      'hlip.study_scans': JSON.stringify(cases.map((c) => c.scans.map((s) => s.name))),
      'hlip.prompt_names': JSON.stringify(promptNames),
      'hlip.prompt_texts': JSON.stringify(ps.columns.map((c) => c.texts)),
      'hlip.logit_scale': String(scale),
      'hlip.data': JSON.stringify(opts.data),
      ...ps.meta,
      ...dataMeta,
    });
    return { out: a.out, studies: cases.length, prompts: promptNames.length, dim: E };
  } finally {
    m.dispose();
  }
}
