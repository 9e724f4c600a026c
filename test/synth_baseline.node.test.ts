import { describe, expect, it } from 'vitest';
import { findingCatalog, generateStudy, synthConfig } from '../src/data/synth.js';
import { DifficultyAccumulator } from '../src/data/synth/stats.js';

// The benchmark must need the images' local content: whole-volume intensity statistics should not
// predict the findings, while reading the lesion region should. Node only: a few hundred small studies.
describe('synthetic benchmark baselines', () => {
  for (const [kind, shape] of [['ct', [16, 32, 32]], ['mri', [12, 24, 24]]] as const) {
    it(`${kind}: global intensity statistics stay near chance, the lesion-region oracle does not`, () => {
      const cfg = synthConfig({ kind, studies: 120, seed: 11, shape: [...shape] });
      const acc = new DifficultyAccumulator(cfg, Object.fromEntries(findingCatalog(kind, cfg.scans).map((f) => [f.name, f.visibleIn])));
      for (let i = 0; i < cfg.studies; i++) acc.add(generateStudy(cfg, i));
      const r = acc.report();
      const [global, , oracle] = r.baselines;
      const g = Object.values(global!.perFinding);
      // 5-fold CV AUC of a model without signal scatters around (and, with few samples, below) 0.5.
      expect(Math.abs(global!.macro - 0.5)).toBeLessThan(0.1);
      expect(g.filter((a) => Math.abs(a - 0.5) < 0.2).length).toBeGreaterThanOrEqual(Math.ceil(0.75 * g.length));
      expect(oracle!.macro).toBeGreaterThan(0.9);
      expect(Object.values(oracle!.perFinding).filter((a) => a > 0.9).length).toBeGreaterThanOrEqual(g.length - 2);
      // Documented statistics are measured, not configured.
      expect(Math.abs(r.negationRate - cfg.negationRate)).toBeLessThan(0.08);
      for (const f of Object.values(r.findings)) {
        expect(Math.abs(f.prevalence - cfg.prevalence)).toBeLessThan(0.15);
        expect(f.voxels!.min).toBeGreaterThanOrEqual(1);
        for (const c of Object.values(f.cnr)) expect(Math.abs(c!.mean)).toBeGreaterThan(3);
      }
      expect(r.findingsPerStudy.mean).toBeGreaterThan(1);
    });
  }
});
