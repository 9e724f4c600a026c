// Minimal `--key value` / `--key=value` / `--flag` parser shared by the commands; unknown keys are errors.
import { HlipError } from '../errors.js';

export interface ParsedArgs {
  values: Record<string, string>;
  flags: Set<string>;
  positional: string[];
}

export function parseArgs(args: readonly string[], valued: readonly string[], booleans: readonly string[], usage: string): ParsedArgs {
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (booleans.includes(key) && eq < 0) {
      flags.add(key);
      continue;
    }
    if (!valued.includes(key)) throw new HlipError('config', `unknown option --${key}\n${usage}`);
    const val = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (val === undefined) throw new HlipError('config', `--${key} needs a value\n${usage}`);
    values[key] = val;
  }
  return { values, flags, positional };
}

export function numberArg(name: string, v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new HlipError('config', `--${name} needs a number, got '${v}'`);
  return x;
}
