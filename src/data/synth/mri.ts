// Brain-MRI-like studies: 2–4 co-registered axial scans of different contrasts (T1, T2, FLAIR, DWI),
// intensities in [0, 1]. Findings change only the contrasts they are visible in, so some are seen in one
// scan alone. Canonical space: mm, +x patient right, +y anterior, +z superior.
import type { Sample, LesionPart, LesionPlan, ScanPlan, StudyPlan } from './engine.js';
import { placementStats, sampleWhere, type KindPlanInput } from './ct.js';
import { Ellipsoid, len, rotZX, soft, type Vec3 } from './geometry.js';
import { SmoothField } from './field.js';
import type { KindText } from './report.js';
import type { Rng } from './rng.js';
import type { FindingInfo } from './types.js';

export const MRI_FOV: Vec3 = [144, 240, 240]; // (z, y, x) mm
export const MRI_SHAPE: [number, number, number] = [24, 48, 48];
export const MRI_CONTRASTS = ['T1', 'T2', 'FLAIR', 'DWI'] as const;
export const MRI_SERIES: Record<string, string> = { T1: 'AX_T1', T2: 'AX_T2', FLAIR: 'AX_FLAIR', DWI: 'AX_DWI' };

export const MRI_TISSUE = { background: 0, scalp: 1, skull: 2, csf: 3, gm: 4, wm: 5 } as const;
const T = MRI_TISSUE;

/** Noise-free tissue intensity per contrast, indexed by MRI_TISSUE. */
const TABLE: Record<string, number[]> = {
  T1: [0, 0.8, 0.06, 0.12, 0.48, 0.7],
  T2: [0, 0.5, 0.05, 0.92, 0.56, 0.4],
  FLAIR: [0, 0.55, 0.05, 0.08, 0.58, 0.44],
  DWI: [0, 0.08, 0.04, 0.1, 0.42, 0.36],
};
type Targets = Partial<Record<string, number>>;
const MASS_CORE: Targets = { T1: 0.3, T2: 0.8, FLAIR: 0.74, DWI: 0.55 };
const EDEMA: Targets = { T1: 0.56, T2: 0.68, FLAIR: 0.72, DWI: 0.4 };
const WML: Targets = { FLAIR: 0.86 };
const BLEED: Targets = { T1: 0.97 };
const CYST: Targets = { T1: TABLE.T1![T.csf], T2: TABLE.T2![T.csf], FLAIR: TABLE.FLAIR![T.csf], DWI: TABLE.DWI![T.csf] };
const INFARCT: Targets = { T1: 0.36, T2: 0.8, FLAIR: 0.82, DWI: 0.9 };

export const MRI_FINDINGS: FindingInfo[] = [
  { name: 'Mass', shape: 'lobulated sphere, 16–28 mm, with an edema halo in white matter', location: 'cerebral white matter', intensity: 'T1 hypo, T2/FLAIR/DWI hyper', visibleIn: ['T1', 'T2', 'FLAIR', 'DWI'], prompt: { positive: 'Intracranial mass.', negative: 'No intracranial mass.' }, keywords: ['mass'] },
  { name: 'White matter lesions', shape: '4–9 small foci, 6–10 mm', location: 'periventricular white matter', intensity: 'FLAIR hyper only', visibleIn: ['FLAIR'], prompt: { positive: 'White matter lesions.', negative: 'No white matter lesions.' }, keywords: ['white matter'] },
  { name: 'Hemorrhage', shape: 'ovoid, 12–30 mm', location: 'basal ganglia, thalamus or lobar', intensity: 'T1 hyper only', visibleIn: ['T1'], prompt: { positive: 'Intracranial hemorrhage.', negative: 'No intracranial hemorrhage.' }, keywords: ['hemorrhage', 'hematoma'] },
  { name: 'Arachnoid cyst', shape: 'flattened extra-axial ellipsoid (cyst)', location: 'convexity, middle or posterior fossa', intensity: 'CSF-like in every contrast', visibleIn: ['T1', 'T2', 'FLAIR', 'DWI'], prompt: { positive: 'Arachnoid cyst.', negative: 'No arachnoid cyst.' }, keywords: ['cyst'] },
  { name: 'Infarct', shape: 'cortical wedge (cone sector)', location: 'MCA/ACA/PCA territory', intensity: 'T2/FLAIR/DWI hyper, T1 slightly hypo', visibleIn: ['T1', 'T2', 'FLAIR', 'DWI'], prompt: { positive: 'Infarct.', negative: 'No infarct.' }, keywords: ['infarct'] },
  { name: 'Ventriculomegaly', shape: 'organ enlargement (ventricles ×1.5–1.8 vs ×0.85–1.1)', location: 'lateral and third ventricles', intensity: 'CSF replacing white matter', visibleIn: ['T1', 'T2', 'FLAIR', 'DWI'], prompt: { positive: 'Ventriculomegaly.', negative: 'No ventriculomegaly.' }, keywords: ['ventric'] },
];

export const MRI_TEXT: KindText = {
  findings: {
    Mass: {
      positive: ['Intracranial mass in the {side} {lobe} lobe measuring {mm} mm.', 'There is a {mm} mm mass in the {side} {lobe} lobe with surrounding edema.', 'Intra-axial mass lesion in the {side} {lobe} lobe, {mm} mm.', '{Side} {lobe} lobe mass with T2 hyperintense surrounding edema.'],
      negative: ['No intracranial mass.', 'No mass lesion.', 'There is no mass or mass effect.'],
    },
    'White matter lesions': {
      positive: ['White matter lesions in the periventricular white matter.', 'Multiple FLAIR hyperintense foci in the periventricular white matter.', '{Count} periventricular white matter lesions.', 'There are {count} small foci of FLAIR signal abnormality in the white matter.'],
      negative: ['No white matter lesions.', 'No abnormal white matter signal.', 'No white matter hyperintensities.'],
    },
    Hemorrhage: {
      positive: ['Intracranial hemorrhage in the {side} {loc}.', 'There is a {mm} mm intraparenchymal hemorrhage in the {side} {loc}.', 'Subacute T1 hyperintense hemorrhage in the {side} {loc}.', '{Side} {loc} hematoma measuring {mm} mm.'],
      negative: ['No intracranial hemorrhage.', 'No evidence of hemorrhage.', 'There is no hemorrhage.'],
    },
    'Arachnoid cyst': {
      positive: ['Arachnoid cyst along the {side} {loc}.', 'There is a {mm} mm arachnoid cyst in the {side} {loc}.', 'Extra-axial CSF intensity cyst in the {side} {loc}, consistent with an arachnoid cyst.', '{Side} {loc} arachnoid cyst.'],
      negative: ['No arachnoid cyst.', 'No extra-axial cyst.', 'There is no arachnoid cyst.'],
    },
    Infarct: {
      positive: ['Infarct in the {side} {territory} territory.', 'There is a wedge-shaped {acuity} infarct in the {side} {territory} territory.', 'Cortical infarct involving the {side} {territory} territory.', '{Acuity} infarct, {side} {territory} territory.'],
      negative: ['No infarct.', 'No acute infarct.', 'There is no evidence of infarct.'],
    },
    Ventriculomegaly: {
      positive: ['Ventriculomegaly.', 'The ventricles are enlarged.', '{Sev} ventriculomegaly.', 'There is {sev} enlargement of the lateral ventricles.'],
      negative: ['No ventriculomegaly.', 'The ventricles are normal in size.', 'Ventricular size is normal.'],
    },
  },
  normal: ['No acute intracranial abnormality.', 'Unremarkable MRI of the brain.', 'Normal MRI of the brain.'],
  filler: ['The orbits are unremarkable.', 'The paranasal sinuses are clear.', 'Major intracranial flow voids are preserved.', 'The pituitary gland is unremarkable.', 'Mild mucosal thickening in the maxillary sinus.', 'The craniocervical junction is unremarkable.'],
  combined: [
    { findings: ['Mass', 'Hemorrhage'], text: ['No intracranial mass or hemorrhage.', 'There is no hemorrhage or mass.'] },
    { findings: ['Infarct', 'Hemorrhage'], text: ['No infarct or hemorrhage.'] },
  ],
};

interface MriAnatomy {
  h: number;
  head: Ellipsoid;
  scalpT: number; skullT: number; csfT: number; cortexT: number;
  /** Sulcal CSF amount (0.15–0.35): with csfT, the study's degree of age-related atrophy. */
  sulcW: number;
  vs: number; vents: Ellipsoid[];
  deep: Ellipsoid[];
  cerebellum: Ellipsoid;
  fold: SmoothField; sulc: SmoothField; tex: SmoothField;
}

function makeVents(vs: number): Ellipsoid[] {
  const grow = 0.7 + 0.3 * vs;
  return [
    new Ellipsoid([10 + 4 * (vs - 1), 4, 12], [6.5 * vs, 28 * grow, 11 * vs]),
    new Ellipsoid([-10 - 4 * (vs - 1), 4, 12], [6.5 * vs, 28 * grow, 11 * vs]),
    new Ellipsoid([0, -2, -2], [2.5 * vs, 13 * grow, 9 * grow]),
  ];
}

function ventDist(vents: Ellipsoid[], x: number, y: number, z: number): number {
  let d = Infinity;
  for (let i = 0; i < vents.length; i++) {
    const v = vents[i]!.dist(x, y, z);
    if (v < d) d = v;
  }
  return d;
}

/** Signed distance to the brain surface (negative inside). */
function brainDist(a: MriAnatomy, x: number, y: number, z: number): number {
  return a.head.dist(x, y, z) + a.scalpT + a.skullT + a.csfT + 1.5 * a.fold.at(x, y, z);
}

const frac = new Float64Array(6);
function overlay(t: number, m: number): void {
  if (m <= 0) return;
  for (let i = 0; i < 6; i++) frac[i]! *= 1 - m;
  frac[t]! += m;
}

function mriValue(a: MriAnatomy, table: number[], x: number, y: number, z: number, out: Sample): void {
  const h = a.h;
  const dH = a.head.dist(x, y, z);
  if (dH > h) {
    out.v = 0;
    out.label = T.background;
    return;
  }
  frac.fill(0);
  frac[0] = 1;
  overlay(T.scalp, soft(dH, h));
  overlay(T.skull, soft(dH + a.scalpT, h));
  overlay(T.csf, soft(dH + a.scalpT + a.skullT, h));
  const fold = a.fold.at(x, y, z);
  const dBr = dH + a.scalpT + a.skullT + a.csfT + 1.5 * fold;
  const mb = soft(dBr, h);
  let tex = 0;
  if (mb > 0) {
    overlay(T.gm, mb);
    const sul = Math.abs(a.sulc.at(x, y, z));
    const band = mb * (1 - soft(dBr + a.cortexT, h));
    if (sul < a.sulcW && band > 0) overlay(T.csf, 0.85 * (1 - sul / a.sulcW) * band);
    overlay(T.wm, soft(dBr + a.cortexT + 2 * fold, h));
    const dc = a.cerebellum.dist(x, y, z);
    if (dc < h) overlay(T.gm, 0.65 * mb * soft(dc, h)); // cerebellum below the tentorium: cortex-rich mix
    for (let i = 0; i < a.deep.length; i++) {
      const d = a.deep[i]!.dist(x, y, z);
      if (d < h) overlay(T.gm, 0.75 * soft(d, h));
    }
    if (z < -25) {
      const db = len(x, y + 18 + 0.05 * (z + 25)) - 12;
      if (db < h) overlay(T.wm, soft(db, h));
    }
    if (z > -20 && y > -70) overlay(T.csf, 0.7 * Math.exp(-(x * x) / 12.5) * soft(dBr + 2, h)); // interhemispheric fissure
    const dv = ventDist(a.vents, x, y, z);
    if (dv < h) overlay(T.csf, soft(dv, h));
    tex = 0.03 * a.tex.at(x, y, z) * (frac[T.gm]! + frac[T.wm]!);
  }
  let v = 0, best = 0, label = 0;
  for (let i = 0; i < 6; i++) {
    const f = frac[i]!;
    v += f * table[i]!;
    if (f > best) {
      best = f;
      label = i;
    }
  }
  out.v = v * (1 + tex);
  out.label = label;
}

function sampleAnatomy(rng: Rng, fields: Rng, nu: number, h: number): MriAnatomy {
  const s = 1 + rng.range(-0.1, 0.08) * nu;
  const head = new Ellipsoid([0, rng.range(-4, 4), -14 + rng.range(-5, 5)], [70 * s * (1 + rng.range(-0.04, 0.04) * nu), 90 * s, 80 * s]);
  const vs = rng.range(0.8, 1.15);
  return {
    h, head,
    scalpT: rng.range(4, 7), skullT: rng.range(5, 8), csfT: 3 + rng.range(-2, 3) * nu, cortexT: rng.range(4, 6),
    sulcW: 0.25 + rng.range(-0.1, 0.1) * nu,
    vs, vents: makeVents(vs),
    deep: [new Ellipsoid([20, 2, -6], [11, 20, 11]), new Ellipsoid([-20, 2, -6], [11, 20, 11])],
    cerebellum: new Ellipsoid([0, -48, -58], [52, 34, 24]),
    fold: new SmoothField(fields, 14, 130),
    sulc: new SmoothField(fields, 9, 130),
    tex: new SmoothField(fields, 8, 130),
  };
}

const sideWord = (x: number): string => (x > 0 ? 'right' : 'left');
function lobeWord(p: Vec3): string {
  if (p[2] < -8 && Math.abs(p[0]) > 30 && p[1] > -40) return 'temporal';
  if (p[1] > 22) return 'frontal';
  if (p[1] < -48) return 'occipital';
  return 'parietal';
}
function box(c: Vec3, r: number): { lo: Vec3; hi: Vec3 } {
  return { lo: [c[0] - r, c[1] - r, c[2] - r], hi: [c[0] + r, c[1] + r, c[2] + r] };
}
function unit(v: Vec3): Vec3 {
  const n = len(v[0], v[1], v[2]);
  return [v[0] / n, v[1] / n, v[2] / n];
}
function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/** The contrasts of a study with `scans` scans. */
export function mriContrasts(scans: number): string[] {
  return MRI_CONTRASTS.slice(0, Math.max(2, Math.min(4, scans)));
}

export function planMri(inp: KindPlanInput): StudyPlan {
  const { cfg, rng, spacing } = inp;
  const h = (spacing[0] + spacing[1] + spacing[2]) / 3;
  const nu = cfg.nuisance;
  const a = sampleAnatomy(rng, inp.fields, nu, h);
  const contrasts = mriContrasts(cfg.scans);
  const rz = rng.range(-0.14, 0.14) * nu, rx = rng.range(-0.09, 0.09) * nu;
  const shift: Vec3 = [rng.range(-6, 6) * nu, rng.range(-6, 6) * nu, rng.range(-6, 6) * nu];
  const biasField = new SmoothField(inp.fields, 70, 160);
  const scans: ScanPlan[] = contrasts.map((c, s) => {
    // Sequences of one session: small extra motion between scans, their own gain, offset and bias.
    const rot = rotZX(rz + rng.range(-0.03, 0.03) * nu, rx + rng.range(-0.03, 0.03) * nu);
    const sh: Vec3 = [shift[0] + rng.range(-2, 2) * nu, shift[1] + rng.range(-2, 2) * nu, shift[2] + rng.range(-2, 2) * nu];
    const amp = 0.12 * nu * rng.range(0.5, 1.5);
    const phase = rng.range(0, 100);
    return {
      contrast: c, series: MRI_SERIES[c]!, rot, shift: sh,
      gain: 1 + rng.range(-0.15, 0.12) * nu,
      gamma: Math.exp(rng.range(-0.25, 0.25) * nu),
      offset: rng.range(-0.02, 0.03) * nu,
      sigma: rng.range(0.018, 0.032) * cfg.noise,
      bias: (x, y, z) => Math.exp(amp * biasField.at(x + phase, y, z)),
      clip: [0, 1],
      noiseStream: inp.noiseStream(s),
    };
  });
  const tables = contrasts.map((c) => TABLE[c]!);
  const targets = (t: Targets): (number | null)[] => contrasts.map((c) => t[c] ?? null);
  const ls = cfg.lesionSize;
  const rot0 = scans[0]!.rot, sh0 = scans[0]!.shift;
  const inFov = (p: Vec3, m: number): boolean => {
    const w0 = rot0[0]! * p[0] + rot0[1]! * p[1] + rot0[2]! * p[2] + sh0[0];
    const w1 = rot0[3]! * p[0] + rot0[4]! * p[1] + rot0[5]! * p[2] + sh0[1];
    const w2 = rot0[6]! * p[0] + rot0[7]! * p[1] + rot0[8]! * p[2] + sh0[2];
    return Math.abs(w0) < MRI_FOV[2] / 2 - m && Math.abs(w1) < MRI_FOV[1] / 2 - m && Math.abs(w2) < MRI_FOV[0] / 2 - m;
  };
  const probe: Sample = { v: 0, label: 0, aux: 0 };
  const labelAt = (p: Vec3): number => {
    mriValue(a, tables[0]!, p[0], p[1], p[2], probe);
    return probe.label;
  };
  const occupied: { c: Vec3; r: number }[] = [];
  const free = (p: Vec3, r: number): boolean => occupied.every((o) => len(p[0] - o.c[0], p[1] - o.c[1], p[2] - o.c[2]) > o.r + r);
  const brainLo: Vec3 = [-60, -80, -40], brainHi: Vec3 = [60, 75, 55];
  const catalogIndex = (name: string): number => MRI_FINDINGS.findIndex((f) => f.name === name);
  const want = new Set(cfg.findings);
  const on = (name: string): boolean => inp.present[name] === true && !inp.omitLesions;
  const plans: LesionPlan[] = [];

  // Ventricle size first: other lesions are placed around the ventricles the study really has.
  let altVent: MriAnatomy | null = null;
  const normalVents = a.vents;
  let bigVents = a.vents;
  if (want.has('Ventriculomegaly')) {
    const r = inp.lesionRng(catalogIndex('Ventriculomegaly'));
    const vsBig = r.range(1.5, 1.8);
    bigVents = makeVents(vsBig);
    if (on('Ventriculomegaly')) {
      altVent = { ...a };
      a.vs = vsBig;
      a.vents = bigVents;
    }
  }
  const order = ['Ventriculomegaly', 'Infarct', 'Mass', 'Arachnoid cyst', 'Hemorrhage', 'White matter lesions'];
  for (const name of order) {
    if (!want.has(name)) continue;
    const present = inp.present[name] === true;
    const r = inp.lesionRng(catalogIndex(name));
    switch (name) {
      case 'Ventriculomegaly': {
        const big = bigVents, small = normalVents;
        const alt = altVent;
        plans.push({
          finding: name, present, sizeMm: 2 * (big[0]!.a[0] - small[0]!.a[0]), lo: [-40, -45, -20], hi: [40, 50, 35], parts: [],
          words: { sev: big[0]!.a[0] / 6.5 < 1.65 ? 'mild' : 'moderate' },
          region: (x, y, z) => {
            const db = ventDist(big, x, y, z);
            if (db > h) return 0;
            return Math.min(soft(db, h), 1 - soft(ventDist(small, x, y, z), h));
          },
          ...(alt ? {
            counterfactual: (x: number, y: number, z: number, s: number) => {
              mriValue(alt, tables[s]!, x, y, z, probe);
              return probe.v;
            },
          } : {}),
        });
        break;
      }
      case 'Mass': {
        const rad = r.range(8, 14) * ls;
        const c = sampleWhere(name, r, brainLo, brainHi, [
          (p) => brainDist(a, p[0], p[1], p[2]) < -(rad + 8) && ventDist(a.vents, p[0], p[1], p[2]) > rad + 4 && p[2] > -28 && p[2] < 50 && inFov(p, rad + 6) && free(p, rad),
          (p) => brainDist(a, p[0], p[1], p[2]) < -(rad + 3) && ventDist(a.vents, p[0], p[1], p[2]) > 0.5 * rad && p[2] > -30 && inFov(p, rad) && free(p, rad),
        ]);
        const rE = rad * r.range(1.6, 2.0);
        occupied.push({ c, r: rE });
        const fld = new SmoothField(r, 7, 2.2 * rad, c);
        const dist = (x: number, y: number, z: number): number => len(x - c[0], y - c[1], z - c[2]);
        const edema: LesionPart = {
          weight: (x, y, z, label) => (label === T.wm ? 1 : label === T.gm ? 0.35 : 0) * soft(dist(x, y, z) - rE * (1 + 0.15 * fld.at(x, y, z)), h),
          targets: targets(EDEMA),
        };
        const core: LesionPart = { weight: (x, y, z) => soft(dist(x, y, z) - rad * (1 + 0.15 * fld.at(x, y, z)), h), targets: targets(MASS_CORE) };
        const mm = Math.round(2 * rad);
        plans.push({ finding: name, present, sizeMm: mm, ...box(c, 1.2 * rE + h), parts: [edema, core], words: { side: sideWord(c[0]), lobe: lobeWord(c), mm: String(mm) } });
        break;
      }
      case 'White matter lesions': {
        const count = r.int(4, 9);
        const foci: { c: Vec3; r: number }[] = [];
        for (let i = 0; i < count; i++) {
          const rad = r.range(3.2, 5) * ls;
          let c: Vec3 = [0, 0, 0];
          placementStats.calls++;
          for (let t = 0; ; t++) {
            if (t === 80) {
              placementStats.failures++;
              placementStats.lastFailure = name;
              break;
            }
            const v = a.vents[r.int(0, 1)]!;
            const d = unit([r.normal(), r.normal(), r.normal()]);
            const surf: Vec3 = [v.c[0] + v.a[0] * d[0], v.c[1] + v.a[1] * d[1], v.c[2] + v.a[2] * d[2]];
            const out = r.range(5, 14) + rad;
            c = [surf[0] + d[0] * out, surf[1] + d[1] * out, surf[2] + d[2] * out];
            if (labelAt(c) === T.wm && ventDist(a.vents, c[0], c[1], c[2]) > rad && inFov(c, rad + 4) && free(c, rad)) break;
          }
          foci.push({ c, r: rad });
        }
        let lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-Infinity, -Infinity, -Infinity];
        for (const f of foci) {
          const b = box(f.c, f.r + h);
          lo = [Math.min(lo[0], b.lo[0]), Math.min(lo[1], b.lo[1]), Math.min(lo[2], b.lo[2])];
          hi = [Math.max(hi[0], b.hi[0]), Math.max(hi[1], b.hi[1]), Math.max(hi[2], b.hi[2])];
        }
        const w = (x: number, y: number, z: number): number => {
          let m = 0;
          for (const f of foci) {
            if (Math.abs(x - f.c[0]) > f.r + h || Math.abs(y - f.c[1]) > f.r + h || Math.abs(z - f.c[2]) > f.r + h) continue;
            m = Math.max(m, soft(len(x - f.c[0], y - f.c[1], z - f.c[2]) - f.r, h));
          }
          return m;
        };
        plans.push({
          finding: name, present, sizeMm: 2 * Math.max(...foci.map((f) => f.r)), lo, hi, parts: [{ weight: w, targets: targets(WML) }],
          words: { count: count <= 5 ? 'several' : 'numerous' },
        });
        break;
      }
      case 'Hemorrhage': {
        const rad = r.range(6, 10) * ls;
        const ax: Vec3 = [rad, rad * r.range(1, 1.5), rad * r.range(0.8, 1.2)];
        const deep = r.bool(0.5);
        let c: Vec3, loc: string;
        if (deep) {
          const e = a.deep[r.int(0, 1)]!;
          const thal = r.bool(0.4);
          c = sampleWhere(name, r, [e.c[0] - 5, e.c[1] + (thal ? -18 : 0), e.c[2] - 4], [e.c[0] + 5, e.c[1] + (thal ? -8 : 10), e.c[2] + 6],
            [(p) => ventDist(a.vents, p[0], p[1], p[2]) > 2 && free(p, rad), (p) => ventDist(a.vents, p[0], p[1], p[2]) > 0], 100);
          loc = thal ? 'thalamus' : 'basal ganglia';
        } else {
          c = sampleWhere(name, r, brainLo, brainHi, [
            (p) => brainDist(a, p[0], p[1], p[2]) < -(rad + 6) && ventDist(a.vents, p[0], p[1], p[2]) > rad + 4 && inFov(p, rad + 6) && free(p, rad),
            (p) => brainDist(a, p[0], p[1], p[2]) < -(rad + 3) && ventDist(a.vents, p[0], p[1], p[2]) > rad && inFov(p, rad),
          ]);
          loc = `${lobeWord(c)} lobe`;
        }
        occupied.push({ c, r: Math.max(...ax) });
        const e = new Ellipsoid(c, ax, rotZX(r.range(-Math.PI, Math.PI), r.range(-0.4, 0.4)));
        const mm = Math.round(2 * Math.max(...ax));
        plans.push({
          finding: name, present, sizeMm: mm, ...box(c, Math.max(...ax) + h),
          parts: [{ weight: (x, y, z, label) => (label >= T.csf ? soft(e.dist(x, y, z), h) : 0), targets: targets(BLEED) }],
          words: { side: sideWord(c[0]), loc, mm: String(mm) },
        });
        break;
      }
      case 'Arachnoid cyst': {
        const side = r.bool() ? 1 : -1;
        const sites: [Vec3, string][] = [
          [[0.75 * side, 0.55, -0.35], 'middle cranial fossa'],
          [[0.45 * side, 0.8, 0.4], 'frontal convexity'],
          [[0.7 * side, -0.3, 0.6], 'parietal convexity'],
          [[0.3 * side, -0.85, -0.2], 'occipital convexity'],
        ];
        let [dir0, loc] = r.pick(sites);
        const tang = r.range(12, 20) * ls, rad = r.range(6, 10) * ls;
        let c: Vec3 = [0, 0, 0];
        let n: Vec3 = unit(dir0);
        placementStats.calls++;
        // The drawn site first; then any site; finally allow overlap with other lesions.
        for (let t = 0; ; t++) {
          if (t === 120) {
            placementStats.failures++;
            placementStats.lastFailure = name;
            break;
          }
          if (t >= 40) [dir0, loc] = r.pick(sites);
          n = unit([dir0[0] + r.range(-0.15, 0.15), dir0[1] + r.range(-0.15, 0.15), dir0[2] + r.range(-0.15, 0.15)]);
          const hc = a.head.c, ha = a.head.a;
          const sc = 1 / len(n[0] / ha[0], n[1] / ha[1], n[2] / ha[2]);
          const depth = a.scalpT + a.skullT + a.csfT + 0.6 * rad;
          c = [hc[0] + n[0] * (sc - depth), hc[1] + n[1] * (sc - depth), hc[2] + n[2] * (sc - depth)];
          if (inFov(c, rad) && (t >= 80 || free(c, tang))) break;
        }
        occupied.push({ c, r: tang });
        let u = cross(n, [0, 0, 1]);
        u = len(u[0], u[1], u[2]) < 0.2 ? unit(cross(n, [1, 0, 0])) : unit(u);
        const v = cross(n, u);
        const e = new Ellipsoid(c, [tang, 0.8 * tang, rad], [u[0], v[0], n[0], u[1], v[1], n[1], u[2], v[2], n[2]]);
        const mm = Math.round(2 * tang);
        plans.push({
          finding: name, present, sizeMm: mm, ...box(c, tang + h),
          parts: [{ weight: (x, y, z, label) => (label >= T.csf ? soft(e.dist(x, y, z), h) : 0), targets: targets(CYST) }],
          words: { side: sideWord(side), loc, mm: String(mm) },
        });
        break;
      }
      case 'Infarct': {
        const side = r.bool() ? 1 : -1;
        const u0 = r.uniform();
        let dir: Vec3, territory: string;
        if (u0 < 0.6) {
          const th = r.range(-0.5, 0.5);
          dir = [side * Math.cos(th), Math.sin(th), r.range(0, 0.3)];
          territory = 'middle cerebral artery';
        } else if (u0 < 0.8) {
          dir = [side * 0.2, 0.9, 0.35];
          territory = 'anterior cerebral artery';
        } else {
          dir = [side * 0.35, -0.9, 0.05];
          territory = 'posterior cerebral artery';
        }
        const u = unit(dir);
        const apex: Vec3 = [side * 8, 0, 8];
        const alpha = r.range(0.2, 0.33);
        const din = r.range(14, 26) * ls;
        const far: Vec3 = [apex[0] + 110 * u[0], apex[1] + 110 * u[1], apex[2] + 110 * u[2]];
        const rr = 110 * Math.tan(alpha) + h;
        const lo: Vec3 = [Math.min(apex[0], far[0]) - rr, Math.min(apex[1], far[1]) - rr, Math.min(apex[2], far[2]) - rr];
        const hi: Vec3 = [Math.max(apex[0], far[0]) + rr, Math.max(apex[1], far[1]) + rr, Math.max(apex[2], far[2]) + rr];
        const w = (x: number, y: number, z: number, label: number): number => {
          if (label !== T.gm && label !== T.wm) return 0;
          const dx = x - apex[0], dy = y - apex[1], dz = z - apex[2];
          const dl = len(dx, dy, dz);
          if (dl < 1e-6) return 0;
          const cos = (dx * u[0] + dy * u[1] + dz * u[2]) / dl;
          const ang = Math.acos(cos > 1 ? 1 : cos < -1 ? -1 : cos);
          const wa = soft((ang - alpha) * dl, h);
          if (wa === 0) return 0;
          return wa * soft(-brainDist(a, x, y, z) - din, h);
        };
        plans.push({
          finding: name, present, sizeMm: Math.round(150 * Math.tan(alpha)), lo, hi, parts: [{ weight: w, targets: targets(INFARCT) }],
          words: { side: sideWord(side), territory, acuity: r.pick(['acute', 'subacute', 'recent']) },
        });
        break;
      }
    }
  }
  return {
    scans,
    lesions: plans,
    value: (x, y, z, s, out) => mriValue(a, tables[s]!, x, y, z, out),
  };
}
