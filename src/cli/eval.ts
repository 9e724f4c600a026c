// `hlip eval`: zero-shot metrics. With --scores/--labels it computes the reference metrics from a per-study
// score file (the reference results layout); with --model/--data it first evaluates a model on the
// benchmark's files (./eval-model.ts: resumable, shardable, cached embeddings) and writes that score file.
import { readFile, writeFile } from 'node:fs/promises';
import { HlipError } from '../errors.js';
import { BENCHMARK_NAMES, benchmarkInfo, checkProtocol, parseLabels, type BenchmarkName, type CtTemplate2025, type Protocol } from '../eval/benchmarks.js';
import { parseShard, type Shard } from '../eval/eval-run.js';
import { evaluateScores, formatScoreEval, parseScores, type ScoreEvalResult, type ScoreKind } from '../eval/score-metrics.js';
import { numberArg } from './args.js';
import { parseTriple, parseWindow, runModelEval, type CliEnv, type ModelEvalArgs } from './eval-model.js';

export const EVAL_USAGE = `usage: hlip eval --benchmark <name> --scores <scores.csv> --labels <labels.csv> [options]
       hlip eval --benchmark <name> --data <root> --model <model.safetensors> [options]

Computes the HLIP reference's zero-shot metrics from a per-study score file: first column the volume path
or id, then one column per class (the reference results layout, e.g. logits_volume.csv). Ids are matched on
the file name without directories and extensions. Prints a table, or one JSON object with --json.
With --model and --data it first evaluates the model on the benchmark's files (public layout, see
docs/evaluation.md): study embeddings are cached (resumable, shardable), the reference prompts and scoring
give <out>/logits_<tag>.csv in that layout, and the same metrics go to <out>/results_<tag>.json.

benchmarks: ${BENCHMARK_NAMES.join(', ')}

options:
  --protocol 2025|2026   reference release whose metrics are used [2025 where it exists, else 2026]
                         2025 ct-rate/rad-chestct: scores are positive-prompt softmax probabilities
                         2026 ct-rate/rad-chestct, mr-rate, rsna, cq500: raw cosine similarities
  --score-kind logits|probabilities
                         pub-brain-5: the five columns are scaled logits or probabilities
                         [2025: probabilities, 2026: logits];
                         the 2025 per-task files (stroke_detection_*.csv, tumor_classification_*.csv)
                         are recognised by their columns
  --roc                  add ROC curve points per class to the JSON
  --out <file.json>      also write the JSON object to a file (with --model: the output folder)
  --json                 print JSON instead of the table

evaluating a model (--data, --model; see docs/evaluation.md for each benchmark's expected files):
  --labels <csv>         label file [found under --data by its published name]
  --manifest <file>      read our study-manifest layout (hlip synth) instead of the public one
  --ct-template volume|organ   2025 chest-CT prompt template [volume]
  --out <dir>            where logits_<tag>.csv and results_<tag>.json go [results/<benchmark>/<model>]
  --cache <dir>          study-embedding cache [<out>/cache]; a rerun skips cached studies
  --shard i/n            evaluate label rows r with r mod n = i (0 ≤ i < n); metrics are computed
                         when every shard's cache is complete (or later with --merge)
  --merge                only compute scores and metrics from the completed shards' caches
  --chunk n              studies per cache chunk [16] (a kill loses at most one chunk)
  --max-chunks n         stop after n chunks (resume by running again)
  --batch-size n         studies per image-tower batch [1]
  --skip-missing         leave out labelled studies without files (counted) instead of failing
  --scans all|model      every scan of a study (reference) or the model's scan count [all]
  --shape D,H,W          model input grid per scan [the model's]
  --window lo,hi         CT HU window [-1150,350]
  --ct-metadata <csv>    CT-RATE: rescale and spacing from validation_metadata.csv (original volumes)
  --tokenizer <spec>     bert-base-uncased, vocab.txt or tokenizer.json [the model file's]
  --quiet                no progress line`;

interface EvalArgs {
  benchmark: BenchmarkName;
  scores?: string;
  labels?: string;
  protocol?: Protocol;
  scoreKind?: ScoreKind;
  roc: boolean;
  json: boolean;
  out?: string;
  data?: string;
  model?: string;
  manifest?: string;
  shard?: Shard;
  cache?: string;
  ctTemplate?: CtTemplate2025;
  merge: boolean;
  skipMissing: boolean;
  quiet: boolean;
  scans?: 'all' | 'model';
  shape?: [number, number, number];
  window?: [number, number];
  ctMetadata?: string;
  chunk?: number;
  batchSize?: number;
  maxChunks?: number;
  tokenizer?: string;
}

const FLAGS = ['json', 'roc', 'merge', 'skip-missing', 'quiet'];
const VALUED = ['benchmark', 'scores', 'labels', 'protocol', 'score-kind', 'out', 'data', 'model', 'manifest', 'shard', 'cache', 'ct-template', 'scans', 'shape', 'window', 'ct-metadata', 'chunk', 'batch-size', 'max-chunks', 'tokenizer'];

function positiveInt(name: string, v: string, min = 1): number {
  const x = numberArg(name, v);
  if (!Number.isInteger(x) || x < min) throw new HlipError('config', `--${name} must be an integer ≥ ${min}, got '${v}'`);
  return x;
}

export function parseEvalArgs(args: string[]): EvalArgs {
  const o: Record<string, string> = {};
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (FLAGS.includes(a.slice(2))) {
      flags.add(a.slice(2));
      continue;
    }
    if (!a.startsWith('--')) throw new HlipError('config', `unexpected argument '${a}'\n${EVAL_USAGE}`);
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const val = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (val === undefined || val.startsWith('--')) throw new HlipError('config', `--${key} needs a value`);
    o[key] = val;
  }
  for (const k of Object.keys(o)) if (!VALUED.includes(k)) throw new HlipError('config', `unknown option --${k}\n${EVAL_USAGE}`);
  if (!o.benchmark) throw new HlipError('config', `--benchmark is required\n${EVAL_USAGE}`);
  const benchmark = benchmarkInfo(o.benchmark).name;
  if (o.protocol !== undefined && o.protocol !== '2025' && o.protocol !== '2026') throw new HlipError('config', `--protocol must be 2025 or 2026, got '${o.protocol}'`);
  if (o.protocol !== undefined) checkProtocol(benchmark, o.protocol);
  const kind = o['score-kind'];
  if (kind !== undefined && kind !== 'logits' && kind !== 'probabilities') throw new HlipError('config', `--score-kind must be logits or probabilities, got '${kind}'`);
  const r: EvalArgs = { benchmark, roc: flags.has('roc'), json: flags.has('json'), merge: flags.has('merge'), skipMissing: flags.has('skip-missing'), quiet: flags.has('quiet') };
  if (o.scores !== undefined) r.scores = o.scores;
  if (o.labels !== undefined) r.labels = o.labels;
  if (o.protocol !== undefined) r.protocol = o.protocol as Protocol;
  if (kind !== undefined) r.scoreKind = kind;
  if (o.out !== undefined) r.out = o.out;
  if (o.data !== undefined) r.data = o.data;
  if (o.model !== undefined) r.model = o.model;
  if (o.manifest !== undefined) r.manifest = o.manifest;
  if (o.shard !== undefined) r.shard = parseShard(o.shard);
  if (o.cache !== undefined) r.cache = o.cache;
  const tpl = o['ct-template'];
  if (tpl !== undefined) {
    if (tpl !== 'volume' && tpl !== 'organ') throw new HlipError('config', `--ct-template must be volume or organ, got '${tpl}'`);
    r.ctTemplate = tpl;
  }
  if (o.scans !== undefined) {
    if (o.scans !== 'all' && o.scans !== 'model') throw new HlipError('config', `--scans must be all or model, got '${o.scans}'`);
    r.scans = o.scans;
  }
  if (o.shape !== undefined) r.shape = parseTriple('shape', o.shape);
  if (o.window !== undefined) r.window = parseWindow(o.window);
  if (o['ct-metadata'] !== undefined) r.ctMetadata = o['ct-metadata'];
  if (o.chunk !== undefined) r.chunk = positiveInt('chunk', o.chunk);
  if (o['batch-size'] !== undefined) r.batchSize = positiveInt('batch-size', o['batch-size']);
  if (o['max-chunks'] !== undefined) r.maxChunks = positiveInt('max-chunks', o['max-chunks'], 0);
  if (o.tokenizer !== undefined) r.tokenizer = o.tokenizer;
  return r;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new HlipError('io', `cannot read the ${what} file: ${(e as Error).message}`, { source: path, cause: e });
  }
}

/** Metrics from score and label files on disk. */
export async function evalScoreFiles(a: EvalArgs & { scores: string; labels: string }): Promise<ScoreEvalResult> {
  const labels = parseLabels(a.benchmark, await readText(a.labels, 'labels'), a.labels);
  const scores = parseScores(await readText(a.scores, 'scores'), a.scores);
  const opts: Parameters<typeof evaluateScores>[3] = { roc: a.roc };
  if (a.protocol) opts.protocol = a.protocol;
  if (a.scoreKind) opts.scoreKind = a.scoreKind;
  return evaluateScores(a.benchmark, labels, scores, opts);
}

/** `hlip eval --model --data`: evaluate (this shard of) a benchmark; print the table once every shard is done. */
async function evalModel(a: EvalArgs & { model: string; data: string }, env: CliEnv): Promise<number> {
  if (a.scoreKind) throw new HlipError('config', '--score-kind applies to score files (--scores); a model run writes what its benchmark needs');
  const m: ModelEvalArgs = {
    benchmark: a.benchmark, data: a.data, model: a.model, merge: a.merge, roc: a.roc, quiet: a.quiet || a.json, skipMissing: a.skipMissing,
    ...(a.labels !== undefined ? { labels: a.labels } : {}), ...(a.manifest !== undefined ? { manifest: a.manifest } : {}),
    ...(a.protocol !== undefined ? { protocol: a.protocol } : {}), ...(a.ctTemplate !== undefined ? { ctTemplate: a.ctTemplate } : {}),
    ...(a.shard !== undefined ? { shard: a.shard } : {}), ...(a.cache !== undefined ? { cache: a.cache } : {}), ...(a.out !== undefined ? { out: a.out } : {}),
    ...(a.scans !== undefined ? { scans: a.scans } : {}), ...(a.shape !== undefined ? { shape: a.shape } : {}), ...(a.window !== undefined ? { window: a.window } : {}),
    ...(a.ctMetadata !== undefined ? { ctMetadata: a.ctMetadata } : {}), ...(a.chunk !== undefined ? { chunk: a.chunk } : {}),
    ...(a.batchSize !== undefined ? { batchSize: a.batchSize } : {}), ...(a.maxChunks !== undefined ? { maxChunks: a.maxChunks } : {}),
    ...(a.tokenizer !== undefined ? { tokenizer: a.tokenizer } : {}),
  };
  const r = await runModelEval(m, env);
  const where = `shard ${r.shard.index}/${r.shard.count}`;
  if (r.status !== 'done') {
    const summary = { status: r.status, shard: `${r.shard.index}/${r.shard.count}`, embedded: r.embedded, cached: r.cached, remaining: r.remaining, missing: r.missing, cache: r.cacheDir, ...(r.pending ? { pending_shards: r.pending } : {}) };
    if (a.json) console.log(JSON.stringify(summary));
    else if (r.status === 'partial') console.log(`hlip eval: ${where}: ${r.embedded} studies embedded, ${r.remaining} left (run the same command again to continue)`);
    else console.log(`hlip eval: ${where} done (${r.embedded} embedded, ${r.cached} cached); waiting for shard(s) ${r.pending!.join(', ')} of ${r.shard.count}, then run with --merge (or the last shard merges)`);
    return 0;
  }
  const res = r.result!;
  if (a.json) console.log(JSON.stringify(res));
  else {
    console.log(formatScoreEval(res));
    console.log(`\nscores: ${r.scoresPath}\nmetrics: ${r.resultsPath}`);
    if (r.missing > 0) console.error(`hlip eval: note: ${r.missing} labelled studies had no files and were skipped`);
  }
  return 0;
}

export async function evalCommand(args: string[], env: CliEnv = {}): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(EVAL_USAGE);
    return 0;
  }
  const a = parseEvalArgs(args);
  if (a.scores === undefined && (a.data !== undefined || a.model !== undefined)) {
    if (a.data === undefined || a.model === undefined) throw new HlipError('config', `evaluating a model needs both --data <root> and --model <file>\n${EVAL_USAGE}`);
    return evalModel({ ...a, data: a.data, model: a.model }, env);
  }
  if (a.scores === undefined || a.labels === undefined) throw new HlipError('config', `--scores and --labels are required\n${EVAL_USAGE}`);
  const r = await evalScoreFiles({ ...a, scores: a.scores, labels: a.labels });
  const json = JSON.stringify(r); // NaN (undefined metric) and the ROC's +Infinity threshold become null
  if (a.out) await writeFile(a.out, json + '\n');
  if (a.json) console.log(json);
  else {
    console.log(formatScoreEval(r));
    if (r.n_labels_unscored > 0) console.error(`hlip eval: note: ${r.n_labels_unscored} studies in ${r.labels} have no row in ${r.scores} and were left out`);
  }
  return 0;
}
