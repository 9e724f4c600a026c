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

/**
 * The reference's `--text-process-cfg` (2026, spec delta §3.1): what the text tower sees per study.
 * 'report': the whole report (shuffled sentences); 'sentence': one sentence (a random one at train time,
 * the first at evaluation); 'sentence and report': both — the sentence for image token 0 and the report
 * for token 1 of a dual-head model (the dual loss), or the sentence alone for a one-token model.
 */
export type TextMode = 'report' | 'sentence' | 'sentence and report';
export const TEXT_MODES: readonly TextMode[] = ['report', 'sentence', 'sentence and report'];

/** `prefix + one sentence`: drawn by `rng` (train) or the first one (eval); the prefix alone for an empty report. */
export function sentenceText(sentences: readonly string[], prefix: string, rng?: DataRng | null): string {
  if (sentences.length === 0) return prefix.trimEnd();
  return prefix + sentences[rng ? rng.int(sentences.length) : 0];
}
