// `hlip synth`: write the synthetic benchmark (NIfTI volumes, manifests, labels, prompts, difficulty.json).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HlipError } from '../errors.js';
import { SYNTH_PRESETS, synthConfig, type SynthConfig, type SynthPreset } from '../data/synth.js';
import { synthFiles, type SynthSummary } from '../data/synth-writer.js';

export const SYNTH_USAGE = `usage: hlip synth --out <dir> [--kind ct|mri] [--studies n] [--seed s] [options]

Writes a synthetic HLIP benchmark: <out>/<study>/<series>.nii.gz, train.json and valid.json manifests,
train_labels.csv and valid_labels.csv, prompts.json and difficulty.json (measured statistics and baselines).

options:
  --kind ct|mri          chest-CT-like (1 scan, HU) or brain-MRI-like (2–4 scans) studies [ct]
  --studies n            total studies [400]
  --heldout n            held-out studies, the last n [studies/4]
  --seed s               non-negative integer [0]
  --size DxHxW           voxels per scan [ct 32x64x64, mri 24x48x48]
  --scans n              MRI scans per study: 2 (T1,T2), 3 (+FLAIR), 4 (+DWI) [3]
  --difficulty p         easy | medium | hard preset [medium]
  --prevalence p         probability of each finding [0.3]
  --negation-rate p      probability that an absent finding is negated in the report [0.5]
  --contrast x           lesion contrast multiplier (overrides the preset)
  --lesion-size x        lesion size multiplier (overrides the preset)
  --noise x              noise σ multiplier (overrides the preset)
  --nuisance x           per-study brightness/contrast/pose/size jitter multiplier (overrides the preset)
  --findings a,b,...     subset of the findings (names as in prompts.json)
  --quiet                no progress output`;

function num(name: string, v: string | undefined): number {
  const x = Number(v);
  if (v === undefined || v.trim() === '' || !Number.isFinite(x)) throw new HlipError('config', `--${name} needs a number, got '${v ?? ''}'`);
  return x;
}

/** Parse `hlip synth` arguments into a configuration and the output directory. */
export function parseSynthArgs(args: string[]): { cfg: SynthConfig; out: string; quiet: boolean } {
  const o: Record<string, string> = {};
  let quiet = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--quiet') {
      quiet = true;
      continue;
    }
    if (!a.startsWith('--')) throw new HlipError('config', `unexpected argument '${a}'\n${SYNTH_USAGE}`);
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const val = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (val === undefined) throw new HlipError('config', `--${key} needs a value`);
    o[key] = val;
  }
  const known = ['out', 'kind', 'studies', 'heldout', 'seed', 'size', 'scans', 'difficulty', 'prevalence', 'negation-rate', 'contrast', 'lesion-size', 'noise', 'nuisance', 'findings'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new HlipError('config', `unknown option --${k}\n${SYNTH_USAGE}`);
  if (!o.out) throw new HlipError('config', `--out <dir> is required\n${SYNTH_USAGE}`);
  const kind = (o.kind ?? 'ct') as SynthConfig['kind'];
  const preset = (o.difficulty ?? 'medium') as SynthPreset;
  if (!(preset in SYNTH_PRESETS)) throw new HlipError('config', `--difficulty must be easy, medium or hard, got '${preset}'`);
  const p: Partial<SynthConfig> & { kind: SynthConfig['kind'] } = { kind };
  if (o.studies !== undefined) p.studies = num('studies', o.studies);
  if (o.heldout !== undefined) p.heldOut = num('heldout', o.heldout);
  if (o.seed !== undefined) p.seed = num('seed', o.seed);
  if (o.scans !== undefined) p.scans = num('scans', o.scans);
  if (o.prevalence !== undefined) p.prevalence = num('prevalence', o.prevalence);
  if (o['negation-rate'] !== undefined) p.negationRate = num('negation-rate', o['negation-rate']);
  if (o.contrast !== undefined) p.contrast = num('contrast', o.contrast);
  if (o['lesion-size'] !== undefined) p.lesionSize = num('lesion-size', o['lesion-size']);
  if (o.noise !== undefined) p.noise = num('noise', o.noise);
  if (o.nuisance !== undefined) p.nuisance = num('nuisance', o.nuisance);
  if (o.size !== undefined) {
    const dims = o.size.split(/[x×,]/).map((d) => num('size', d));
    if (dims.length !== 3) throw new HlipError('config', `--size must be DxHxW, got '${o.size}'`);
    p.shape = dims as [number, number, number];
  }
  if (o.findings !== undefined) p.findings = o.findings.split(',').map((s) => s.trim()).filter(Boolean);
  return { cfg: synthConfig(p, preset), out: o.out, quiet };
}

/** Write the data set; returns the summary (also used by tests). */
export async function writeSynth(cfg: SynthConfig, out: string, log: (line: string) => void = () => {}): Promise<SynthSummary> {
  const t0 = performance.now();
  const gen = synthFiles(cfg, {
    onStudy: (_s, done, total) => {
      if (done % 50 === 0 || done === total) log(`synth: ${done}/${total} studies (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    },
  });
  const dirs = new Set<string>();
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
    const path = join(out, r.value.path);
    const dir = dirname(path);
    if (!dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      dirs.add(dir);
    }
    await writeFile(path, r.value.data);
  }
}

export async function synth(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(SYNTH_USAGE);
    return 0;
  }
  const { cfg, out, quiet } = parseSynthArgs(args);
  const log = quiet ? () => {} : (l: string) => console.error(l);
  const s = await writeSynth(cfg, out, log);
  if (!quiet) {
    const d = s.difficulty;
    console.log(`wrote ${s.train} train + ${s.heldOut} held-out ${cfg.kind} studies to ${out}`);
    console.log(`findings per study ${d.findingsPerStudy.mean}, negation rate ${d.negationRate}, normal studies ${d.normalStudyFraction}`);
    for (const b of d.baselines) console.log(`macro AUC ${b.macro.toFixed(3)}  ${b.method}`);
  }
  return 0;
}
