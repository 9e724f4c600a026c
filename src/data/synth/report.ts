// Report writing: template sentences with synonyms and slots filled from each lesion's words, negations
// for some absent findings, normal-study and neutral filler sentences, in random order.
import type { ReportSentence } from './types.js';
import type { Rng } from './rng.js';

export interface FindingText {
  /** Positive templates; the first is the canonical one (drawn more often, mirrored by the prompt). */
  positive: string[];
  /** Negation templates; the first is canonical. */
  negative: string[];
}

export interface KindText {
  findings: Record<string, FindingText>;
  /** Whole-study normal statements, only for studies without any finding. */
  normal: string[];
  /** Sentences that say nothing about any finding. */
  filler: string[];
  /** Negations of two absent findings in one sentence. */
  combined: { findings: [string, string]; text: string[] }[];
}

export interface ReportOptions {
  negationRate: number;
  /** Findings in scope for this data set, in catalog order. */
  findings: string[];
}

/** Fill `{slot}` placeholders (`{Slot}` capitalises the value); unknown slots are an error in the catalog. */
export function fill(template: string, words: Record<string, string>): string {
  const out = template.replace(/\{(\w+)\}/g, (_m, key: string) => {
    const lower = key.charAt(0).toLowerCase() + key.slice(1);
    const v = words[lower];
    if (v === undefined) throw new Error(`synthetic report template '${template}' has no value for {${key}}`);
    return key === lower ? v : v.charAt(0).toUpperCase() + v.slice(1);
  });
  const tidy = out.replace(/\s+/g, ' ').replace(/ ,/g, ',').replace(/ \./g, '.').trim();
  return tidy.charAt(0).toUpperCase() + tidy.slice(1);
}

function pickTemplate(rng: Rng, list: string[]): string {
  // The canonical template carries 40 % of the mass so the prompt wording is well represented.
  if (list.length === 1 || rng.uniform() < 0.4) return list[0]!;
  return list[1 + Math.floor(rng.uniform() * (list.length - 1))]!;
}

/**
 * Build the report of one study. `present` maps each present finding to its words (side, size...).
 */
export function buildReport(text: KindText, present: Map<string, Record<string, string>>, opts: ReportOptions, rng: Rng): ReportSentence[] {
  const out: ReportSentence[] = [];
  for (const name of opts.findings) {
    const words = present.get(name);
    if (!words) continue;
    out.push({ text: fill(pickTemplate(rng, text.findings[name]!.positive), words), polarity: 'positive', findings: [name] });
  }
  const absent = opts.findings.filter((f) => !present.has(f));
  // Every absent finding gets its own draw, so the negation rate is exactly the configured probability.
  const negated = absent.filter(() => rng.uniform() < opts.negationRate);
  const done = new Set<string>();
  for (const c of text.combined) {
    const [a, b] = c.findings;
    if (negated.includes(a) && negated.includes(b) && !done.has(a) && !done.has(b) && rng.uniform() < 0.5) {
      out.push({ text: fill(rng.pick(c.text), {}), polarity: 'negative', findings: [a, b] });
      done.add(a);
      done.add(b);
    }
  }
  for (const name of negated) {
    if (done.has(name)) continue;
    out.push({ text: fill(pickTemplate(rng, text.findings[name]!.negative), {}), polarity: 'negative', findings: [name] });
  }
  if (present.size === 0 && rng.uniform() < 0.85) {
    out.push({ text: rng.pick(text.normal), polarity: 'normal', findings: [...opts.findings] });
  }
  const fillers = rng.shuffle([...text.filler]).slice(0, rng.int(0, 2));
  for (const f of fillers) out.push({ text: f, polarity: 'neutral', findings: [] });
  if (out.length === 0) out.push({ text: rng.pick(text.filler), polarity: 'neutral', findings: [] });
  return rng.shuffle(out);
}
