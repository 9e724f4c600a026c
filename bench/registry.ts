// Benchmarks register themselves here by name; bench/index.ts dispatches `npm run bench -- <name>`.
export interface BenchContext {
  /** Print one JSON object per result line (readers ignore any other line). */
  json: boolean;
  /** Arguments after the bench name, minus --json. */
  args: string[];
}

export type BenchFn = (ctx: BenchContext) => Promise<void>;

export const benches = new Map<string, { run: BenchFn; help: string }>();

export function registerBench(name: string, help: string, run: BenchFn): void {
  benches.set(name, { run, help });
}
