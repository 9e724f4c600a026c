#!/usr/bin/env node
import { HlipError } from '../errors.js';
import { convert } from './convert.js';
import { doctor } from './doctor.js';

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, { run: Command; help: string }> = {
  doctor: { run: doctor, help: 'print the WebGPU adapter, its limits and features, and run a smoke test [--json]' },
  convert: { run: convert, help: '<in.pt|in.safetensors> <out.safetensors>: PyTorch checkpoint or safetensors to safetensors [--all] [--dtype f16]' },
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
