#!/usr/bin/env node
import { HlipError } from '../errors.js';
import { convert } from './convert.js';
import { demo } from './demo.js';
import { doctor } from './doctor.js';
import { embed } from './embed.js';
import { evalCommand } from './eval.js';
import { fixture } from './fixture.js';
import { synth } from './synth.js';
import { train } from './train.js';

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, { run: Command; help: string }> = {
  doctor: { run: doctor, help: 'print the WebGPU adapter, its limits and features, and run a smoke test [--json]' },
  convert: { run: convert, help: '<in.pt|in.safetensors|hf-dir> <out.safetensors>: PyTorch checkpoint, safetensors or Hugging Face snapshot to safetensors [--all] [--dtype f16] [--model MODEL_NAME]' },
  fixture: { run: fixture, help: '<fixture.safetensors> --out <out.safetensors>: run a golden fixture (../shared/golden format) and write every non-input tensor in float32' },
  synth: { run: synth, help: '--out <dir> [--kind ct|mri] [--studies n] [--seed s]: write the synthetic benchmark (see hlip synth --help)' },
  train: { run: train, help: '--config <file.json> [--out dir] [--resume]: train an HLIP model (see hlip train --help)' },
  demo: { run: demo, help: '[--out runs/demo] [--seed s]: synthetic MRI → train a small HLIP → held-out zero-shot AUC, with a shuffled-report control' },
  eval: { run: evalCommand, help: '--benchmark <name> (--scores <scores.csv> --labels <labels.csv> | --data <root> --model <file>) [--json]: zero-shot metrics as the reference computes them (see hlip eval --help)' },
  embed: { run: embed, help: '--model <file> --out <emb.safetensors> (--data <root> --benchmark <name> | <study folders...>): study and prompt embeddings' },
  export: { run: async (a) => (await import('./export.js')).exportCommand(a), help: '--to pt <in.safetensors> <out.pt> [--epoch N] [--name NAME] [--no-optimizer]: model or training checkpoint as the reference PyTorch checkpoint (see hlip export --help)' },
  infer: { run: async (a) => (await import('./infer.js')).inferCommand(a), help: '<study folder | scan files…> --model <file> [--prompts p.json] [--findings a,b] [--json] [--interpret [--target f] --out dir]: per-finding probabilities and relevance maps (see hlip infer --help)' },
};

function usage(): string {
  const lines = Object.entries(commands).map(([k, v]) => `  ${k.padEnd(10)} ${v.help}`);
  return `usage: hlip <command> [options]\n\ncommands:\n${lines.join('\n')}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`hlip: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof HlipError) console.error(`hlip: ${e.message}`);
    else console.error(e);
    process.exit(1);
  },
);
