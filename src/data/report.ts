// Report → text as the reference brain-MRI loader builds it (spec §3.3, src/hlip_train/data_brain_mri.py):
// prefix + the sentences joined with single spaces, the sentences shuffled at train time and kept in
// manifest order at evaluation. The prefixes are the ones `hlip synth` documents (synth.reportPrefix).
import { reportPrefix } from './synth.js';
import type { DataRng } from './random.js';

export type ReportKind = 'ct' | 'mri';

/** "This MRI study shows: " / "This CT study shows: ". */
export function defaultReportPrefix(kind: ReportKind): string {
  return reportPrefix(kind);
}

/**
 * The text of one report: `prefix + sentences.join(' ')`, with the sentences shuffled by `rng` when one
 * is given (train) and in their given order otherwise (eval). The input array is not modified.
 */
export function reportText(sentences: readonly string[], prefix: string, rng?: DataRng | null): string {
  const s = [...sentences];
  if (rng) rng.shuffle(s);
  return prefix + s.join(' ');
}
