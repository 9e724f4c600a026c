// The demo's report builder and the zero-shot scoring helpers (pure TypeScript).
import { describe, expect, it } from 'vitest';
import { lineChartSvg, reportHtml, reportMarkdown } from '../src/eval/report.js';
import { labelsFromCsv, parsePrompts, scoreFindings } from '../src/eval/zeroshot.js';

describe('zero-shot scoring helpers', () => {
  it('prompts, labels and per-finding AUC / ROC from scores', () => {
    const prompts = parsePrompts({ Mass: { positive: 'Mass.', negative: 'No mass.' }, Cyst: { positive: 'Cyst.', negative: 'No cyst.' } }, 'prompts.json');
    expect(prompts.map((p) => p.name)).toEqual(['Mass', 'Cyst']);
    expect(() => parsePrompts({ Mass: { positive: 'Mass.' } }, 'p.json')).toThrow(/p\.json: finding 'Mass' needs/);
    const labels = labelsFromCsv(['VolumeName', 'Mass', 'Cyst'], [['a', '1', '0'], ['b', '0', '0'], ['c', '1', '0'], ['d', '0', '0']], 'l.csv');
    expect(() => labelsFromCsv(['id', 'Mass'], [['a', '2']], 'l.csv')).toThrow(/l\.csv: line 2, column 'Mass'/);
    const r = scoreFindings({ studyIds: ['a', 'b', 'c', 'd'], findings: ['Mass', 'Cyst'], scores: [Float64Array.of(0.9, 0.2, 0.4, 0.5), Float64Array.of(0.1, 0.2, 0.3, 0.4)] }, labels);
    // Mass: positives a (0.9), c (0.4); negatives b (0.2), d (0.5): 3 of 4 pairs ordered → 0.75.
    expect(r.perClass['Mass']!.auc).toBeCloseTo(0.75, 12);
    expect(r.perClass['Mass']!.positives).toBe(2);
    // Cyst has no positive: AUC undefined (NaN), left out of the macro mean.
    expect(Number.isNaN(r.perClass['Cyst']!.auc)).toBe(true);
    expect(r.macroAuc).toBeCloseTo(0.75, 12);
    expect(() => scoreFindings({ studyIds: ['x'], findings: ['Mass'], scores: [Float64Array.of(0.5)] }, labels)).toThrow(/no row for study 'x'/);
  });
});

describe('report', () => {
  const input = {
    title: 'Demo <1>',
    summary: ['a & b'],
    loss: [[0, 2.7726], [1, 2.7701], [2, 2.7650]] as [number, number][],
    controlLoss: [[0, 2.7726], [1, 2.7725], [2, 2.7726]] as [number, number][],
    perClass: { Mass: { auc: 0.75, roc: { fpr: [0, 0.5, 1], tpr: [0, 1, 1] }, controlAuc: 0.5 } },
    macroAuc: 0.75,
    controlMacroAuc: 0.5,
  };
  it('HTML: escaped text, AUC table with the control column, both charts inline', () => {
    const html = reportHtml(input);
    expect(html).toContain('Demo &#60;1&#62;');
    expect(html).toContain('a &#38; b');
    expect(html).toMatch(/<td>Mass<\/td><td>0\.750<\/td><td>0\.500<\/td>/);
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toContain('control (shuffled reports)');
  });
  it('SVG ticks distinguish a narrow loss range; Markdown links the charts', () => {
    const svg = lineChartSvg([{ name: 'loss', points: input.loss, color: '#000' }], { title: 't', xLabel: 'x', yLabel: 'y' });
    const yTicks = [...svg.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]);
    expect(new Set(yTicks).size).toBe(yTicks.length);
    expect(svg).toMatch(/<path d="M[\d.]+ [\d.]+L/);
    const md = reportMarkdown(input, { loss: 'loss.svg', roc: 'roc.svg' });
    expect(md).toContain('| Mass | 0.750 | 0.500 |');
    expect(md).toContain('![ROC](roc.svg)');
  });
});
