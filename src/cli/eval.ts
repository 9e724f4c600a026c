// `hlip eval`: zero-shot metrics. With --scores/--labels it computes the reference metrics from a per-study
// score file (the reference results layout); evaluation from a model (--data/--model) is issue 6 item 1.
import { readFile, writeFile } from 'node:fs/promises';
import { HlipError } from '../errors.js';
import { BENCHMARK_NAMES, benchmarkInfo, checkProtocol, parseLabels, type BenchmarkName, type Protocol } from '../eval/benchmarks.js';
import { evaluateScores, formatScoreEval, parseScores, type ScoreEvalResult, type ScoreKind } from '../eval/score-metrics.js';

export const EVAL_USAGE = `usage: hlip eval --benchmark <name> --scores <scores.csv> --labels <labels.csv> [options]

Computes the HLIP reference's zero-shot metrics from a per-study score file: first column the volume path
or id, then one column per class (the reference results layout, e.g. logits_volume.csv). Ids are matched on
the file name without directories and extensions. Prints a table, or one JSON object with --json.

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
  --out <file.json>      also write the JSON object to a file
  --json                 print JSON instead of the table`;

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
}

export function parseEvalArgs(args: string[]): EvalArgs {
  const o: Record<string, string> = {};
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json' || a === '--roc') {
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
  const known = ['benchmark', 'scores', 'labels', 'protocol', 'score-kind', 'out', 'data', 'model'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new HlipError('config', `unknown option --${k}\n${EVAL_USAGE}`);
  if (!o.benchmark) throw new HlipError('config', `--benchmark is required\n${EVAL_USAGE}`);
  const benchmark = benchmarkInfo(o.benchmark).name;
  if (o.protocol !== undefined && o.protocol !== '2025' && o.protocol !== '2026') throw new HlipError('config', `--protocol must be 2025 or 2026, got '${o.protocol}'`);
  if (o.protocol !== undefined) checkProtocol(benchmark, o.protocol);
  const kind = o['score-kind'];
  if (kind !== undefined && kind !== 'logits' && kind !== 'probabilities') throw new HlipError('config', `--score-kind must be logits or probabilities, got '${kind}'`);
  const r: EvalArgs = { benchmark, roc: flags.has('roc'), json: flags.has('json') };
  if (o.scores !== undefined) r.scores = o.scores;
  if (o.labels !== undefined) r.labels = o.labels;
  if (o.protocol !== undefined) r.protocol = o.protocol as Protocol;
  if (kind !== undefined) r.scoreKind = kind;
  if (o.out !== undefined) r.out = o.out;
  if (o.data !== undefined) r.data = o.data;
  if (o.model !== undefined) r.model = o.model;
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

export async function evalCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(EVAL_USAGE);
    return 0;
  }
  const a = parseEvalArgs(args);
  if (a.scores === undefined && (a.data !== undefined || a.model !== undefined)) {
    throw new HlipError('config', 'evaluation from a model (--data/--model) is not available yet; compute metrics from a score file with --scores and --labels');
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
