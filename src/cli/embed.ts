// `hlip embed`: study embeddings and prompt embeddings in one safetensors file, so prompts can be tried
// later without encoding the studies again (as the reference's pub_brain_5_embed.py does).
import { HlipError } from '../errors.js';
import { BENCHMARK_NAMES, benchmarkInfo, checkProtocol, type Protocol } from '../eval/benchmarks.js';
import { numberArg, parseArgs } from './args.js';
import { parseTriple, parseWindow, runEmbed, type CliEnv, type EmbedArgs } from './eval-model.js';

export const EMBED_USAGE = `usage: hlip embed --model <model.safetensors> --out <emb.safetensors> (--data <root> --benchmark <name> | <study folder|file>...) [options]

Writes L2-normalised study embeddings and prompt embeddings:
  study_embeddings [N, E]   one row per study (benchmark: per case, in label-file order)
  prompt_embeddings [K, E]  one row per prompt column (texts averaged as the reference's classifier)
  logit_scale []            exp(logit_scale) of the model
metadata: hlip.study_keys, hlip.study_ids, hlip.study_scans, hlip.prompt_names, hlip.prompt_texts, …
Zero-shot scores are then study_embeddings · prompt_embeddingsᵀ (times logit_scale for softmaxes).

benchmarks: ${BENCHMARK_NAMES.join(', ')}

options:
  --prompts <file>       prompts.json ({finding: {positive, negative}}, with the model's report prefix)
                         or a text file of one prompt per line (as written)
                         [with --benchmark: the reference prompts; else the model file's own prompts]
  --protocol 2025|2026   benchmark prompt set [2025 where it exists]
  --ct-template volume|organ
  --labels <csv>  --manifest <file>  --skip-missing   as for hlip eval
  --scans all|model      every scan of a study, or the model's scan count [benchmark: all; folders: model]
  --shape D,H,W  --window lo,hi  --tokenizer <spec>
  --cache <dir>          cache study embeddings there (a rerun resumes)
  --chunk n              studies per cache chunk [16]
  --quiet`;

export async function embed(args: string[], env: CliEnv = {}): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(EMBED_USAGE);
    return 0;
  }
  const p = parseArgs(args, ['model', 'out', 'data', 'benchmark', 'labels', 'manifest', 'prompts', 'protocol', 'ct-template', 'scans', 'shape', 'window', 'tokenizer', 'cache', 'chunk'], ['skip-missing', 'quiet', 'json'], EMBED_USAGE);
  const v = p.values;
  if (!v['model']) throw new HlipError('config', `--model is required\n${EMBED_USAGE}`);
  if (!v['out']) throw new HlipError('config', `--out <emb.safetensors> is required\n${EMBED_USAGE}`);
  const a: EmbedArgs = { model: v['model'], out: v['out'], studies: p.positional, quiet: p.flags.has('quiet') || p.flags.has('json'), skipMissing: p.flags.has('skip-missing') };
  if (v['benchmark']) a.benchmark = benchmarkInfo(v['benchmark']).name;
  if (v['protocol']) {
    if (!a.benchmark) throw new HlipError('config', '--protocol needs --benchmark');
    checkProtocol(a.benchmark, v['protocol']);
    a.protocol = v['protocol'] as Protocol;
  }
  const tpl = v['ct-template'];
  if (tpl !== undefined) {
    if (tpl !== 'volume' && tpl !== 'organ') throw new HlipError('config', `--ct-template must be volume or organ, got '${tpl}'`);
    a.ctTemplate = tpl;
  }
  if (v['scans'] !== undefined) {
    if (v['scans'] !== 'all' && v['scans'] !== 'model') throw new HlipError('config', `--scans must be all or model, got '${v['scans']}'`);
    a.scans = v['scans'];
  }
  for (const k of ['data', 'labels', 'manifest', 'prompts', 'tokenizer', 'cache'] as const) if (v[k] !== undefined) a[k] = v[k];
  if (v['shape'] !== undefined) a.shape = parseTriple('shape', v['shape']);
  if (v['window'] !== undefined) a.window = parseWindow(v['window']);
  if (v['chunk'] !== undefined) a.chunk = Math.max(1, Math.floor(numberArg('chunk', v['chunk'])));
  const r = await runEmbed(a, env);
  if (p.flags.has('json')) console.log(JSON.stringify(r));
  else console.log(`hlip embed: ${r.studies} studies and ${r.prompts} prompts (dimension ${r.dim}) → ${r.out}`);
  return 0;
}
