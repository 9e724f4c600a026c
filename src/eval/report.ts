// Human-readable training/evaluation report: self-contained HTML with inline SVG charts (loss curve,
// ROC curves) and a per-finding AUC table. Pure string building, so the CLI and the browser app share it.

export interface RocCurve {
  /** False-positive rates, ascending, starting at 0 and ending at 1. */
  fpr: readonly number[];
  tpr: readonly number[];
}

export interface ReportClass {
  auc: number;
  roc?: RocCurve;
  /** AUC of the control run (trained on shuffled reports), when there is one. */
  controlAuc?: number;
}

export interface ReportInput {
  title: string;
  /** Lines shown under the title (data, model, timing...). */
  summary: readonly string[];
  /** [step, loss] of the main run. */
  loss: readonly (readonly [number, number])[];
  /** [step, loss] of the control run. */
  controlLoss?: readonly (readonly [number, number])[];
  perClass: Readonly<Record<string, ReportClass>>;
  macroAuc: number;
  controlMacroAuc?: number;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  color: string;
  dashed?: boolean;
}

/** A line chart as a standalone SVG document (axes, ticks, legend). */
export function lineChartSvg(series: readonly Series[], opts: { title: string; xLabel: string; yLabel: string; xRange?: [number, number]; yRange?: [number, number]; diagonal?: boolean; size?: [number, number] }): string {
  const [Wd, Ht] = opts.size ?? [520, 360];
  const m = { l: 56, r: 16, t: 28, b: 44 };
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const ext = (i: 0 | 1): [number, number] => {
    if (!pts.length) return [0, 1];
    let lo = Math.min(...pts.map((p) => p[i]));
    let hi = Math.max(...pts.map((p) => p[i]));
    if (hi === lo) [lo, hi] = [lo - 0.5, hi + 0.5];
    return [lo, hi];
  };
  const [x0, x1] = opts.xRange ?? ext(0);
  const [y0, y1] = opts.yRange ?? ext(1);
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (Wd - m.l - m.r);
  const py = (y: number) => Ht - m.b - ((y - y0) / (y1 - y0)) * (Ht - m.t - m.b);
  const ticks = (lo: number, hi: number) => Array.from({ length: 6 }, (_, i) => lo + ((hi - lo) * i) / 5);
  // Enough decimals to tell neighbouring ticks apart (a loss curve near ln 16 spans only ~0.01).
  const label = (t: number, lo: number, hi: number) => t.toFixed(Math.min(6, Math.max(0, 1 - Math.floor(Math.log10((hi - lo) / 5 || 1)))));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${Wd}" height="${Ht}" viewBox="0 0 ${Wd} ${Ht}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${Wd}" height="${Ht}" fill="white"/>`);
  out.push(`<text x="${Wd / 2}" y="16" text-anchor="middle" font-size="13">${esc(opts.title)}</text>`);
  for (const t of ticks(x0, x1)) out.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${m.t}" y2="${Ht - m.b}" stroke="#eee"/><text x="${px(t)}" y="${Ht - m.b + 14}" text-anchor="middle">${label(t, x0, x1)}</text>`);
  for (const t of ticks(y0, y1)) out.push(`<line x1="${m.l}" x2="${Wd - m.r}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/><text x="${m.l - 4}" y="${py(t) + 4}" text-anchor="end">${label(t, y0, y1)}</text>`);
  out.push(`<rect x="${m.l}" y="${m.t}" width="${Wd - m.l - m.r}" height="${Ht - m.t - m.b}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${Wd / 2}" y="${Ht - 8}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  out.push(`<text transform="translate(14 ${Ht / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  if (opts.diagonal) out.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#aaa" stroke-dasharray="4 4"/>`);
  series.forEach((s, i) => {
    const d = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y], j) => `${j ? 'L' : 'M'}${px(x).toFixed(1)} ${py(y).toFixed(1)}`).join('');
    if (d) out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    const ly = m.t + 14 + i * 14;
    out.push(`<line x1="${Wd - m.r - 150}" x2="${Wd - m.r - 132}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${Wd - m.r - 128}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** The loss-curve SVG of a report. */
export function lossChartSvg(r: Pick<ReportInput, 'loss' | 'controlLoss'>): string {
  const series: Series[] = [{ name: 'training loss', points: r.loss, color: PALETTE[0]! }];
  if (r.controlLoss?.length) series.push({ name: 'control (shuffled reports)', points: r.controlLoss, color: PALETTE[1]!, dashed: true });
  return lineChartSvg(series, { title: 'Contrastive loss', xLabel: 'step', yLabel: 'loss' });
}

/** The ROC-curve SVG of a report (one curve per finding with a curve). */
export function rocChartSvg(r: Pick<ReportInput, 'perClass'>): string {
  const series: Series[] = Object.entries(r.perClass)
    .filter(([, c]) => c.roc)
    .map(([name, c], i) => ({ name: `${name} (${fmt(c.auc, 2)})`, color: PALETTE[i % PALETTE.length]!, points: (c.roc as RocCurve).fpr.map((f, j) => [f, (c.roc as RocCurve).tpr[j] ?? NaN] as const) }));
  return lineChartSvg(series, { title: 'ROC curves (held-out, zero-shot)', xLabel: 'false-positive rate', yLabel: 'true-positive rate', xRange: [0, 1], yRange: [0, 1], diagonal: true, size: [520, 420] });
}

/** Self-contained HTML report: summary, AUC table, loss curve and ROC curves as inline SVG images. */
export function reportHtml(r: ReportInput): string {
  const hasControl = r.controlMacroAuc !== undefined;
  const rows = Object.entries(r.perClass)
    .map(([name, c]) => `<tr><td>${esc(name)}</td><td>${fmt(c.auc)}</td>${hasControl ? `<td>${fmt(c.controlAuc ?? NaN)}</td>` : ''}</tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}</style>
</head><body>
<h1>${esc(r.title)}</h1>
<ul>${r.summary.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<h2>Held-out zero-shot AUC</h2>
<table><tr><th>finding</th><th>AUC</th>${hasControl ? '<th>control AUC</th>' : ''}</tr>
${rows}
<tr><th>macro</th><th>${fmt(r.macroAuc)}</th>${hasControl ? `<th>${fmt(r.controlMacroAuc as number)}</th>` : ''}</tr></table>
<div class="charts">
<figure>${lossChartSvg(r)}</figure>
<figure>${rocChartSvg(r)}</figure>
</div>
</body></html>
`;
}

/** The same report as Markdown (charts referenced as SVG files written beside it). */
export function reportMarkdown(r: ReportInput, files: { loss: string; roc: string }): string {
  const hasControl = r.controlMacroAuc !== undefined;
  const lines = [`# ${r.title}`, '', ...r.summary.map((s) => `- ${s}`), '', '| finding | AUC |' + (hasControl ? ' control AUC |' : ''), '|---|---|' + (hasControl ? '---|' : '')];
  for (const [name, c] of Object.entries(r.perClass)) lines.push(`| ${name} | ${fmt(c.auc)} |` + (hasControl ? ` ${fmt(c.controlAuc ?? NaN)} |` : ''));
  lines.push(`| **macro** | **${fmt(r.macroAuc)}** |` + (hasControl ? ` ${fmt(r.controlMacroAuc as number)} |` : ''), '', `![loss](${files.loss})`, '', `![ROC](${files.roc})`, '');
  return lines.join('\n');
}
