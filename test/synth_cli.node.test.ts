import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HlipError } from '../src/errors.js';
import { parseSynthArgs, synth, writeSynth } from '../src/cli/synth.js';
import { generateStudy, synthAffine, type SynthConfig } from '../src/data/synth.js';
import type { SynthSummary } from '../src/data/synth-writer.js';
import { readNifti } from '../src/io/nifti.js';

let dir: string;
const runs: { cfg: SynthConfig; out: string; summary: SynthSummary }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hlip-synth-'));
  for (const kind of ['ct', 'mri'] as const) {
    const out = join(dir, kind);
    const args = ['--out', out, '--kind', kind, '--studies', '6', '--heldout', '2', '--seed', '3', '--size', kind === 'ct' ? '16x32x32' : '12x24x24'];
    const { cfg } = parseSynthArgs(args);
    runs.push({ cfg, out, summary: await writeSynth(cfg, out) });
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function parseCsv(text: string): string[][] {
  return text.trim().split('\n').map((l) => l.split(','));
}

describe('hlip synth', () => {
  it('writes volumes, manifests, labels, prompts and difficulty.json', async () => {
    for (const { cfg, out, summary } of runs) {
      const names = (await readdir(out)).sort();
      const ids = Array.from({ length: 6 }, (_, i) => `synth_${cfg.kind}_s3_0000${i}`);
      expect(names).toEqual([...ids, 'difficulty.json', 'prompts.json', 'train.json', 'train_labels.csv', 'valid.json', 'valid_labels.csv'].sort());
      const train = JSON.parse(await readFile(join(out, 'train.json'), 'utf8'));
      const valid = JSON.parse(await readFile(join(out, 'valid.json'), 'utf8'));
      expect(Object.keys(train)).toEqual(ids.slice(0, 4));
      expect(Object.keys(valid)).toEqual(ids.slice(4));
      const series = cfg.kind === 'ct' ? ['CT'] : ['AX_T1', 'AX_T2', 'AX_FLAIR'];
      for (const [id, entry] of Object.entries({ ...train, ...valid }) as [string, { series: Record<string, { num_slices: number; view: string }>; report: string[]; report_length: number }][]) {
        expect(Object.keys(entry.series)).toEqual(series);
        for (const s of series) {
          expect(entry.series[s]).toEqual({ num_slices: cfg.shape[0], view: 'axial' });
          expect((await readdir(join(out, id))).sort()).toEqual(series.map((n) => `${n}.nii.gz`).sort());
        }
        const st = generateStudy(cfg, Number(id.slice(-5)));
        expect(entry.report).toEqual(st.report);
        expect(entry.report_length).toBe(st.report.join(' ').split(/\s+/).length);
      }
      // Labels: CT-RATE style, VolumeName then one 0/1 column per finding, rows in study order.
      for (const [file, rows] of [['train_labels.csv', ids.slice(0, 4)], ['valid_labels.csv', ids.slice(4)]] as const) {
        const csv = parseCsv(await readFile(join(out, file), 'utf8'));
        expect(csv[0]).toEqual(['VolumeName', ...cfg.findings]);
        expect(csv.slice(1).map((r) => r[0])).toEqual(rows);
        for (const r of csv.slice(1)) {
          const st = generateStudy(cfg, Number(r[0]!.slice(-5)));
          expect(r.slice(1)).toEqual(cfg.findings.map((f) => String(st.labels[f])));
        }
      }
      const prompts = JSON.parse(await readFile(join(out, 'prompts.json'), 'utf8'));
      expect(Object.keys(prompts)).toEqual(cfg.findings);
      for (const p of Object.values(prompts) as { positive: string; negative: string }[]) {
        expect(typeof p.positive).toBe('string');
        expect(p.negative.startsWith('No ')).toBe(true);
      }
      const diff = JSON.parse(await readFile(join(out, 'difficulty.json'), 'utf8'));
      expect(diff.config).toEqual(cfg);
      expect(diff.measured.studies).toBe(6);
      expect(Object.keys(diff.measured.findings)).toEqual(cfg.findings);
      expect(diff.measured.baselines.map((b: { method: string }) => b.method)).toHaveLength(3);
      expect(diff.splits.heldOut.studies).toBe(2);
      expect(diff.definitions.cnr).toMatch(/noise/);
      expect(summary.train).toBe(4);
    }
  });

  it('writes NIfTI-1 files that read back as the generated volumes', async () => {
    for (const { cfg, out } of runs) {
      const st = generateStudy(cfg, 1);
      for (const sc of st.scans) {
        const bytes = await readFile(join(out, st.id, `${sc.series}.nii.gz`));
        const raw = gunzipSync(bytes);
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        expect(dv.getInt32(0, true)).toBe(348);
        expect(new TextDecoder().decode(raw.subarray(344, 347))).toBe('n+1');
        expect([1, 2, 3, 4].map((i) => dv.getInt16(40 + 2 * i, true))).toEqual([cfg.shape[2], cfg.shape[1], cfg.shape[0], 1]);
        expect(dv.getInt16(70, true)).toBe(cfg.kind === 'ct' ? 4 : 2); // int16 / uint8
        expect(dv.getFloat32(112, true)).toBeCloseTo(cfg.kind === 'ct' ? 1 : 1 / 255, 7);
        expect(dv.getInt16(252, true)).toBe(1);
        expect(dv.getInt16(254, true)).toBe(1);
        expect(dv.getFloat32(108, true)).toBe(352);
        const vol = await readNifti(new Uint8Array(bytes), { name: sc.series });
        expect(vol.dims).toEqual([cfg.shape[2], cfg.shape[1], cfg.shape[0]]);
        expect(vol.orientation).toBe('RPI');
        vol.spacing.forEach((s, i) => expect(s).toBeCloseTo(sc.spacing[2 - i]!, 4));
        synthAffine(sc.shape, sc.spacing).forEach((a, i) => expect(vol.affine[i]).toBeCloseTo(a, 3));
        // Same voxel order as in memory; quantisation only (int16 HU rounding, MRI 1/255 steps).
        const tol = cfg.kind === 'ct' ? 0.5001 : 0.5 / 255 + 1e-6;
        let worst = 0;
        for (let i = 0; i < sc.data.length; i++) worst = Math.max(worst, Math.abs(vol.data[i]! - sc.data[i]!));
        expect(worst).toBeLessThanOrEqual(tol);
      }
    }
  });

  it('parses options and refuses bad ones with a typed error', async () => {
    const { cfg } = parseSynthArgs(['--out', '/x', '--kind', 'mri', '--scans', '4', '--difficulty', 'hard', '--findings', 'Mass,Infarct', '--negation-rate=0.2']);
    expect(cfg.scans).toBe(4);
    expect(cfg.findings).toEqual(['Mass', 'Infarct']);
    expect(cfg.negationRate).toBe(0.2);
    expect(cfg.contrast).toBe(0.6);
    expect(parseSynthArgs(['--out', '/x', '--difficulty', 'hard', '--contrast', '0.9']).cfg.contrast).toBe(0.9);
    for (const [args, msg] of [
      [['--kind', 'ct'], /--out/],
      [['--out', '/x', '--studies', 'many'], /--studies needs a number/],
      [['--out', '/x', '--colour', 'red'], /unknown option --colour/],
      [['--out', '/x', '--size', '16x32'], /DxHxW/],
      [['--out', '/x', '--difficulty', 'brutal'], /easy, medium or hard/],
      [['--out', '/x', '--kind', 'ct', '--findings', 'Mass'], /unknown or invisible finding 'Mass'/],
    ] as [string[], RegExp][]) {
      expect(() => parseSynthArgs(args)).toThrow(HlipError);
      expect(() => parseSynthArgs(args)).toThrow(msg);
    }
    expect(await synth(['--help'])).toBe(0);
  });
});
