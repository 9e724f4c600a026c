// End to end: the browser app (examples/web, built into dist/web) in headless Chromium on a software
// WebGPU adapter. The test makes a synthetic 3-scan MRI study and a randomly initialised demo-sized
// model, opens both in the page through its file inputs, runs the findings and the relevance overlay,
// and checks the page's probabilities against the Node CLI (`hlip infer --json`) on the same files
// (within 1e-5), that
// NiiVue shows the overlay, that nothing was logged as an error and that no request left 127.0.0.1.
// Saves a screenshot to test/__screenshots__/web_e2e.png.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateStudy, synthConfig, synthPrompts } from '../src/data/synth.js';
import { encodeSynthScan } from '../src/data/synth-writer.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { buildOpenClip } from '../src/models/openclip.js';
import { createNodeDevice } from '../src/node/gpu.js';
import { DEMO, demoModelConfig } from '../src/train/demo-config.js';
import { initFanIn } from '../src/train/init.js';
import { axialSeries, buildDicom } from './helpers/dicom_builders.js';
import { serveWeb } from '../scripts/serve-web.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOT = 'test/__screenshots__/web_e2e.png';
const TOL = 1e-5;

let dir = '';
let server: Server | null = null;
let url = '';
let browser: Browser | null = null;

beforeAll(async () => {
  // The app is served from the bundle: build it (about two seconds) so the test runs on its own too.
  execFileSync(process.execPath, ['esbuild.config.mjs'], { stdio: 'inherit' });
  dir = await mkdtemp(join(tmpdir(), 'hlip-web-e2e-'));
  ({ server, url } = await serveWeb('dist/web', 0));
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (server ? server.close(r) : r(null)));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A synthetic study (one .nii.gz per scan, in scan order) and a random demo-sized model.safetensors. */
async function fixtures(): Promise<{ scans: string[]; model: string; dicomDir: string }> {
  // Two DICOM series of 6 slices in sub-folders of one study folder.
  const dicomDir = join(dir, 'dicom-study');
  for (const [k, uid] of ['1.2.3.1', '1.2.3.2'].entries()) {
    await mkdir(join(dicomDir, `series${k + 1}`), { recursive: true });
    const slices = axialSeries(6, { rows: 16, columns: 16, seriesUID: uid, f: (z, j, i) => 100 * z + 10 * j + i + k });
    for (const [n, sl] of slices.entries()) await writeFile(join(dicomDir, `series${k + 1}`, `im${n}.dcm`), buildDicom(sl));
  }
  const cfg = synthConfig({ kind: 'mri', scans: DEMO.scans, studies: 1, heldOut: 0, seed: 11, shape: DEMO.shape });
  const st = generateStudy(cfg, 0);
  const scans: string[] = [];
  for (const sc of st.scans) {
    const p = join(dir, `${sc.series}.nii.gz`);
    await writeFile(p, await encodeSynthScan(sc, 'mri'));
    scans.push(p);
  }
  const dev = await createNodeDevice();
  const modelConfig = demoModelConfig();
  const built = buildOpenClip(dev, modelConfig as never);
  initFanIn(built.model, 5);
  const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
  for (const [name, t] of built.model.stateDict()) tensors.push([name, { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array }]);
  built.model.dispose();
  const model = join(dir, 'model.safetensors');
  await writeFile(model, writeSafetensors(tensors, {
    format: 'pt',
    'hlip.model_config': JSON.stringify(modelConfig),
    'hlip.tokenizer': JSON.stringify('bert-base-uncased'),
    'hlip.data': JSON.stringify({ kind: 'mri', shape: DEMO.shape, num_scans: DEMO.scans, report_prefix: null }),
    'hlip.prompts': JSON.stringify(synthPrompts(cfg)),
  }));
  return { scans, model, dicomDir };
}

/** The Node CLI on the same files: `hlip infer <scans…> --model <file> --json` (Dawn). */
function cliProbabilities(scans: string[], model: string): Record<string, number> {
  const out = execFileSync(process.execPath, ['dist/node-cli/cli.js', 'infer', ...scans, '--model', model, '--json'], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? '/tmp' } });
  return (JSON.parse(out) as { probabilities: Record<string, number> }).probabilities;
}

interface PageState {
  ready: boolean;
  busy: string | null;
  error: string | null;
  scans: string[];
  model: { source: string } | null;
  probabilities: Record<string, number> | null;
  relevance: string | null;
  layers: { name: string; colormap: string }[];
}

describe('browser app end to end', () => {
  it('opens a study and a model, runs the findings with the relevance overlay, and agrees with Node', async () => {
    expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`).toBe(true);
    const t0 = performance.now();
    const lap = (what: string) => console.log(`web e2e: ${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const fx = await fixtures();
    lap('fixtures');
    const expected = cliProbabilities(fx.scans, fx.model);
    lap('node CLI probabilities');

    // WebGPU on SwiftShader; NiiVue's WebGL2 through ANGLE on SwiftShader, asked for explicitly (Chromium
    // deprecates the silent software fallback).
    const args = ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])];
    browser = await chromium.launch({ executablePath: CHROMIUM, args });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1150 } });
    const errors: string[] = [];
    const offsite: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    const origin = new URL(url).host;
    // Every request the page or its worker makes passes here: only the app's own origin is let through.
    await page.context().route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.protocol === 'data:' || u.protocol === 'blob:' || u.host === origin) return route.continue();
      offsite.push(u.href);
      return route.abort();
    });
    const state = () => page.evaluate(() => (window as unknown as { hlipApp?: { state: PageState } }).hlipApp?.state ?? ({ ready: false, busy: 'loading', error: null } as PageState));
    // Polls the page state until `ok` holds with no task running, or the page reports an error.
    const idle = async (what: string, ok: (s: PageState) => boolean, timeout = 90_000) => {
      const end = Date.now() + timeout;
      for (;;) {
        const s = await state();
        expect(s.error, `${what}: ${s.error}`).toBeNull();
        if (!s.busy && ok(s)) return s;
        if (Date.now() > end) throw new Error(`${what}: timed out after ${timeout} ms (busy: ${s.busy})`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    await page.goto(url);
    await idle('start', (s) => s.ready);
    lap('page ready');
    await expect(page.locator('#privacy').textContent()).resolves.toMatch(/No network request leaves this page/);

    // A DICOM folder: one scan per series, whatever the folder layout.
    await page.setInputFiles('#dicom', fx.dicomDir);
    let s = await idle('open DICOM folder', (s) => s.scans.length === 2);
    expect(s.scans).toEqual(['dicom-study/series1', 'dicom-study/series2']);
    expect(s.layers.length).toBe(1);
    lap('DICOM folder open');

    await page.setInputFiles('#nifti', fx.scans);
    s = await idle('open study', (s) => s.scans.length === 3);
    // Name order first (as `hlip infer` reads a folder); ▲ twice gives the training order T1, T2, FLAIR.
    const names = (p: string[]) => p.map((x) => x.split('/').pop());
    expect(names(s.scans)).toEqual(names([...fx.scans].sort()));
    for (const label of ['AX_T1', 'AX_T2']) {
      await page.locator('#scans li', { hasText: label }).locator('button.up').click();
      s = await idle('reorder scans', () => true);
    }
    expect(names(s.scans)).toEqual(names(fx.scans));
    lap('study open');
    expect(s.layers.length).toBe(1);

    await page.setInputFiles('#model-file', fx.model);
    s = await idle('load model', (s) => s.model !== null);
    lap('model loaded');

    await page.click('#run');
    s = await idle('findings + relevance', (s) => s.probabilities !== null && s.relevance !== null, 120_000);
    lap('findings and relevance');

    // Probabilities: the table carries full precision in data-p; compare with Node (Dawn) on the same files.
    const rows = await page.$$eval('#findings tbody tr', (trs) => trs.map((tr) => [(tr as HTMLElement).dataset['finding'] ?? '', Number((tr as HTMLElement).dataset['p'])] as const));
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(expected).sort());
    let worst = 0;
    for (const [name, p] of rows) {
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThan(1);
      worst = Math.max(worst, Math.abs(p - (expected[name] as number)));
    }
    console.log(`web e2e: ${rows.length} findings, max |p_browser − p_node| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(TOL);

    // The viewer shows the model input of the first scan with the relevance overlay on top.
    expect(s.layers.length).toBe(2);
    expect(s.layers[1]!.colormap).toBe('warm');
    const top = Object.entries(s.probabilities!).sort((a, b) => b[1] - a[1])[0]![0];
    expect(s.relevance).toBe(top);

    await mkdir('test/__screenshots__', { recursive: true });
    await page.screenshot({ path: SHOT });
    expect(existsSync(SHOT)).toBe(true);

    // Cancel: a training run stopped while it generates its studies leaves the loaded model in place.
    await page.fill('#studies', '16');
    await page.fill('#steps', '1');
    await page.click('#train');
    await page.waitForFunction(() => /generating studies/.test(document.getElementById('status-text')?.textContent ?? ''), null, { timeout: 30_000 });
    await page.click('#cancel');
    s = await idle('cancel training', () => true);
    await expect(page.locator('#status-text').textContent()).resolves.toMatch(/cancelled/);
    expect(s.model?.source).toBe('model.safetensors');
    lap('training cancelled');

    expect(errors, errors.join('\n')).toEqual([]);
    expect(offsite, offsite.join('\n')).toEqual([]);
  });
});
