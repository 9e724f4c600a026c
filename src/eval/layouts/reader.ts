// The contract every benchmark layout reader implements, and the driver that maps a label table to cases.
import { FormatError } from '../../errors.js';
import type { LabelTable } from '../benchmarks.js';
import type { DataTree } from './tree.js';
import { MissingStudiesError, type BenchStudy, type LayoutResult, type MissingStudy } from './types.js';

export interface LayoutContext {
  tree: DataTree;
  labels: LabelTable;
}

/** Cases of one label row, or why there are none. */
export type Resolved = { cases: Omit<BenchStudy, 'row'>[] } | { missing: string };

export interface LayoutReader {
  name: string;
  /** Called once before any row (e.g. to index a flat folder). */
  prepare?(ctx: LayoutContext): Promise<void>;
  resolve(ctx: LayoutContext, row: number): Promise<Resolved>;
}

export interface ReadLayoutOptions {
  /** Label rows to resolve (default all), e.g. one shard's. */
  rows?: readonly number[];
  /** Leave label rows without files out (counted in `missing`) instead of failing. */
  skipMissing?: boolean;
  /** Rows resolved at a time (folder listings run concurrently; default 8). */
  concurrency?: number;
}

/** Maps label rows to cases with `reader`; missing studies are a MissingStudiesError unless skipped. */
export async function runLayout(reader: LayoutReader, tree: DataTree, labels: LabelTable, opts: ReadLayoutOptions = {}): Promise<LayoutResult> {
  const ctx: LayoutContext = { tree, labels };
  await reader.prepare?.(ctx);
  const rows = opts.rows ?? labels.ids.map((_, i) => i);
  const results = new Array<Resolved>(rows.length);
  const conc = Math.max(1, opts.concurrency ?? 8);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(conc, rows.length) }, async () => {
    while (next < rows.length) {
      const k = next++;
      results[k] = await reader.resolve(ctx, rows[k]!);
    }
  }));
  const studies: BenchStudy[] = [];
  const missing: MissingStudy[] = [];
  const keys = new Set<string>();
  results.forEach((r, k) => {
    const row = rows[k]!;
    if ('missing' in r) {
      missing.push({ id: labels.ids[row]!, reason: r.missing });
      return;
    }
    for (const c of r.cases) {
      if (keys.has(c.key)) throw new FormatError(tree.name, `two label rows map to the same files '${c.key}' (label id '${labels.ids[row]}')`);
      keys.add(c.key);
      studies.push({ ...c, row });
    }
  });
  if (missing.length && !opts.skipMissing) throw new MissingStudiesError(tree.name, missing, rows.length);
  return { layout: reader.name, root: tree.name, studies, missing };
}
