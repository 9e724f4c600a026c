// The page: wires the panels to the worker (all heavy work happens there) and to the NiiVue viewer.
// window.hlipApp exposes the page state to the end-to-end test.
import { parsePrompts, type FindingPrompt } from '../../src/eval/zeroshot.js';
import { DEMO } from '../../src/train/demo-config.js';
import type { MemoryEstimate, ModelInput, ModelSummary, Progress, ViewVolume, WeightDType } from './protocol.js';
import { CancelledError, WorkerClient, type Call } from './ui/client.js';
import { renderFindings } from './ui/findings.js';
import { LossPlot } from './ui/loss-plot.js';
import { Viewer } from './ui/viewer.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const MiB = 2 ** 20;

const state = {
  ready: false,
  busy: null as string | null,
  error: null as string | null,
  scans: [] as string[],
  model: null as ModelSummary | null,
  demoModel: null as string | null,
  probabilities: null as Record<string, number> | null,
  relevance: null as string | null,
  layers: [] as { name: string; colormap: string }[],
};
(window as unknown as { hlipApp: unknown }).hlipApp = { state };

const client = new WorkerClient(new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }));
let viewer: Viewer | null = null;
let studyViews: ViewVolume[] = [];
let scanLabels: string[] = [];
/** Per model input scan, the study volume it came from (set by the findings run). */
let inputScans: number[] = [];
let relevanceViews: ViewVolume[] = [];
let shownScan = 0;
let prompts: FindingPrompt[] | null = null;
let running: Call<unknown> | null = null;

function status(text: string, p?: Progress): void {
  $('status-text').textContent = text;
  const bar = $<HTMLProgressElement>('progress');
  if (p && p.total > 0) {
    bar.max = p.total;
    bar.value = p.done;
  } else bar.removeAttribute('value');
}

/** Runs one worker call with the status bar, progress and the Cancel button; errors go to the status line. */
async function task<T>(label: string, start: (onProgress: (p: Progress) => void) => Call<T>): Promise<T | null> {
  if (running) {
    status(`busy: ${state.busy}; wait or cancel`);
    return null;
  }
  state.busy = label;
  state.error = null;
  document.body.classList.add('busy');
  $<HTMLButtonElement>('cancel').disabled = false;
  status(label);
  const call = start((p) => {
    const loss = p.loss !== undefined ? ` · loss ${p.loss.toFixed(4)}` : '';
    const pace = p.stepMs !== undefined ? ` · ${(p.stepMs / 1000).toFixed(1)} s/step, ~${Math.ceil(((p.total - p.done) * p.stepMs) / 60_000)} min left` : '';
    status(`${p.stage} ${p.done}/${p.total}${loss}${pace}`, p);
  });
  running = call as Call<unknown>;
  try {
    const r = await call.result;
    status(`${label}: done`, { stage: '', done: 1, total: 1 });
    return r;
  } catch (e) {
    const msg = e instanceof CancelledError ? `${label}: cancelled` : `${label} failed: ${(e as Error).message}`;
    if (!(e instanceof CancelledError)) state.error = msg;
    status(msg);
    return null;
  } finally {
    running = null;
    state.busy = null;
    document.body.classList.remove('busy');
    $<HTMLButtonElement>('cancel').disabled = true;
  }
}

/** Shows scan `s`: a study volume, or after a findings run model input scan s's volume with its relevance overlay. */
async function showScan(s: number): Promise<void> {
  if (!viewer) return;
  const base = studyViews[inputScans.length ? (inputScans[s] as number) : s];
  if (!base) return;
  shownScan = s;
  await viewer.show(base, relevanceViews[s] ?? null);
  state.layers = viewer.layers();
  $<HTMLSelectElement>('scan-select').value = String(s);
}

function listScans(names: string[]): void {
  $<HTMLSelectElement>('scan-select').replaceChildren(...names.map((n, i) => new Option(`${i + 1}: ${n}`, String(i))));
}

async function openStudy(files: File[]): Promise<void> {
  if (!files.length) return;
  const list = files.map((f) => ({ path: f.webkitRelativePath || f.name, file: f }));
  const r = await task('opening study', (on) => client.call('openStudy', { files: list }, on));
  if (!r) return;
  state.scans = r.scans.map((s) => s.name);
  studyViews = r.views;
  inputScans = [];
  relevanceViews = [];
  state.probabilities = null;
  state.relevance = null;
  renderFindings($<HTMLTableElement>('findings'), {}, null, () => {});
  scanLabels = r.scans.map((s) => `${s.name} (${s.dims.join('×')}, ${s.orientation})`);
  renderScanList();
  listScans(state.scans);
  await showScan(0);
}

/** The study's scans in model order, each with a button to move it up (scan order matters to multi-scan models). */
function renderScanList(): void {
  $('scans').replaceChildren(
    ...scanLabels.map((label, i) => {
      const li = document.createElement('li');
      li.textContent = label + ' ';
      if (i > 0) {
        const up = Object.assign(document.createElement('button'), { textContent: '▲', title: 'move up', className: 'up' });
        up.onclick = () => void moveUp(i);
        li.append(up);
      }
      return li;
    }),
  );
}

async function moveUp(i: number): Promise<void> {
  const order = state.scans.map((_, k) => k);
  [order[i - 1], order[i]] = [order[i] as number, order[i - 1] as number];
  if ((await task('reordering scans', (on) => client.call('orderScans', { order }, on))) === null) return;
  const by = <T>(a: T[]) => order.map((k) => a[k] as T);
  state.scans = by(state.scans);
  scanLabels = by(scanLabels);
  studyViews = by(studyViews);
  inputScans = [];
  relevanceViews = [];
  state.probabilities = null;
  state.relevance = null;
  renderFindings($<HTMLTableElement>('findings'), {}, null, () => {});
  renderScanList();
  listScans(state.scans);
  await showScan(0);
}

const dtype = (): WeightDType => ($<HTMLInputElement>('f16').checked ? 'f16' : 'f32');

function describeEstimate(e: MemoryEstimate): string {
  const mem = (navigator as { deviceMemory?: number }).deviceMemory;
  return [
    `${(e.parameters / 1e6).toFixed(1)} M parameters → ${(e.weightBytes / MiB).toFixed(0)} MiB of weights in ${e.dtype}`,
    `largest tensor ${(e.largestTensorBytes / MiB).toFixed(1)} MiB`,
    e.workBytes !== null ? `working memory up to ~${(e.workBytes / MiB).toFixed(0)} MiB` : 'working memory unknown (no model config in the file)',
    mem ? `this device reports ~${mem} GB of RAM` : '',
    ...e.blockers.map((b) => `cannot load: ${b}`),
  ].filter(Boolean).join(' · ');
}

async function loadModel(input: ModelInput): Promise<boolean> {
  const est = await task('estimating memory', (on) => client.call('estimate', { input, dtype: dtype() }, on));
  if (!est) return false;
  $('estimate').textContent = describeEstimate(est);
  if (est.blockers.length) return false;
  const m = await task('loading model', (on) => client.call('loadModel', { input, dtype: dtype() }, on));
  if (!m) {
    // The worker frees the old model before loading, so a failed or cancelled load leaves none.
    state.model = null;
    $('model-info').textContent = 'no model loaded';
    return false;
  }
  setModel(m);
  return true;
}

/** A new model: earlier findings and overlays no longer apply. */
function setModel(m: ModelSummary): void {
  state.model = m;
  $('model-info').textContent = `${m.source}: ${m.kind.toUpperCase()}, ${m.numScans} scan(s) of ${m.shape.join('×')}, ${(m.parameters / 1e6).toFixed(2)} M parameters, weights in ${m.dtype}`;
  inputScans = [];
  relevanceViews = [];
  state.probabilities = null;
  state.relevance = null;
  renderFindings($<HTMLTableElement>('findings'), {}, null, () => {});
  $('layer-info').textContent = '';
  listScans(state.scans);
  void showScan(0);
}

async function runFindings(): Promise<void> {
  if (!state.model && state.demoModel && !(await loadModel({ url: state.demoModel }))) return;
  if (!state.model) return status('load a model first (a .safetensors file, or train the demo model here)');
  if (!state.scans.length) return status('open a study first');
  const use = prompts ?? state.model.prompts;
  const r = await task('finding probabilities', (on) => client.call('infer', { prompts: use }, on));
  if (!r) return;
  state.probabilities = r.probabilities;
  inputScans = r.scans;
  relevanceViews = [];
  state.relevance = null;
  // The model's input scans (the study's, repeated in order to the model's scan count).
  listScans(r.scans.map((v) => `${state.scans[v] ?? ''} (model input)`));
  const top = Object.entries(r.probabilities).sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  renderFindings($<HTMLTableElement>('findings'), r.probabilities, top, (f) => void showRelevance(f));
  await showScan(0);
  if (top) await showRelevance(top);
}

async function showRelevance(finding: string): Promise<void> {
  const r = await task(`relevance map of ${finding}`, (on) => client.call('relevance', { finding }, on));
  if (!r || !state.probabilities) return;
  relevanceViews = r.maps;
  state.relevance = finding;
  renderFindings($<HTMLTableElement>('findings'), state.probabilities, finding, (f) => void showRelevance(f));
  $('layer-info').textContent = `overlay: relevance of "${finding.replace(/_/g, ' ')}" (warm colours, shown above 25% of its range)`;
  await showScan(shownScan);
}

async function train(): Promise<void> {
  const steps = Number($<HTMLInputElement>('steps').value);
  const studies = Number($<HTMLInputElement>('studies').value);
  const plot = new LossPlot($('loss') as unknown as SVGSVGElement, steps);
  const r = await task('training the demo model', (on) =>
    client.call('train', { steps, studies, seed: 1 }, (p) => {
      on(p);
      if (p.loss !== undefined) plot.add(p.done - 1, p.loss);
    }),
  );
  if (!r) return;
  setModel(r.model);
  $<HTMLButtonElement>('save').disabled = false;
}

async function saveModel(): Promise<void> {
  const r = await task('saving model', (on) => client.call('saveModel', {}, on));
  if (!r) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([r.bytes as Uint8Array<ArrayBuffer>]));
  a.download = r.name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function boot(): Promise<void> {
  viewer = await Viewer.create($<HTMLCanvasElement>('gl'));
  const info = await task('starting WebGPU', (on) => client.call('init', {}, on));
  if (!info) return;
  $('adapter').textContent = `${info.adapter} · f16 ${info.f16 ? 'yes' : 'no'} · buffers up to ${info.maxBufferMiB.toFixed(0)} MiB`;
  const f16 = $<HTMLInputElement>('f16');
  f16.disabled = !info.f16;
  if (!info.f16) f16.parentElement?.setAttribute('title', 'this adapter has no shader-f16: weights stay in f32');
  // The build copies the demo's model (runs/demo/main/model.safetensors) when there is one.
  const demo = (await (await fetch('./demo-model.json')).json()) as { file: string | null };
  state.demoModel = demo.file;
  $<HTMLButtonElement>('demo-model').disabled = !demo.file;
  $('model-info').textContent = demo.file ? 'the demo model (from npm run demo) is used unless you load another' : 'no model loaded: pick a .safetensors file or train the demo model below';

  // One study at a time: picking with one input clears the other.
  for (const [id, other] of [['nifti', 'dicom'], ['dicom', 'nifti']] as const) {
    $<HTMLInputElement>(id).onchange = (e) => {
      $<HTMLInputElement>(other).value = '';
      void openStudy(Array.from((e.target as HTMLInputElement).files ?? []));
    };
  }
  $<HTMLInputElement>('model-file').onchange = (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    const tokenizer = $<HTMLInputElement>('tokenizer-file').files?.[0];
    const config = $<HTMLInputElement>('config-file').files?.[0];
    if (f) void loadModel({ file: f, ...(tokenizer ? { tokenizer } : {}), ...(config ? { config } : {}) });
  };
  $<HTMLButtonElement>('demo-model').onclick = () => state.demoModel && void loadModel({ url: state.demoModel });
  $<HTMLInputElement>('prompts').onchange = async (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (!f) return;
    try {
      prompts = parsePrompts(JSON.parse(await f.text()), f.name);
      status(`${prompts.length} findings from ${f.name}`);
    } catch (err) {
      status(`${f.name}: ${(err as Error).message}`);
    }
  };
  $<HTMLInputElement>('steps').value = String(DEMO.steps);
  $<HTMLInputElement>('studies').value = String(DEMO.studies - DEMO.heldOut);
  $<HTMLButtonElement>('run').onclick = () => void runFindings();
  $<HTMLButtonElement>('train').onclick = () => void train();
  $<HTMLButtonElement>('save').onclick = () => void saveModel();
  $<HTMLButtonElement>('cancel').onclick = () => running && client.cancel(running.id);
  $<HTMLSelectElement>('scan-select').onchange = (e) => void showScan(Number((e.target as HTMLSelectElement).value));
  state.ready = true;
  status('ready: open a study');
}

void boot();
