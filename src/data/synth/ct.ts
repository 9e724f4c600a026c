// Chest-CT-like studies: one scan in Hounsfield units. Canonical anatomy space is in mm with +x towards
// the patient's right, +y anterior, +z superior (RAS, as the NIfTI affine the writer stores).
import type { Sample, LesionPlan, StudyPlan, ScanPlan } from './engine.js';
import { Ellipsoid, ell2Dist, len, rotZX, segDist, soft, type Vec3 } from './geometry.js';
import { SmoothField } from './field.js';
import type { KindText } from './report.js';
import type { Rng } from './rng.js';
import type { FindingInfo, SynthConfig } from './types.js';

export const CT_FOV: Vec3 = [256, 350, 350]; // (z, y, x) mm
export const CT_SHAPE: [number, number, number] = [32, 64, 64];

export const CT_TISSUE = { air: 0, fat: 1, soft: 2, bone: 3, lung: 4, heart: 5, aorta: 6, fluid: 7 } as const;
const T = CT_TISSUE;

export const CT_FINDINGS: FindingInfo[] = [
  { name: 'Lung nodule', shape: 'sphere/ovoid, 10–19 mm', location: 'anywhere in either lung', intensity: 'hyperdense (soft tissue in lung)', visibleIn: ['CT'], prompt: { positive: 'Lung nodule.', negative: 'No lung nodule.' }, keywords: ['nodule'] },
  { name: 'Consolidation', shape: 'irregular diffuse patch, 40–70 mm', location: 'either lung', intensity: 'hyperdense', visibleIn: ['CT'], prompt: { positive: 'Consolidation.', negative: 'No consolidation.' }, keywords: ['consolidation'] },
  { name: 'Emphysema', shape: 'patchy diffuse, upper zones of both lungs', location: 'upper lungs', intensity: 'hypodense (−985 HU in −860 HU lung)', visibleIn: ['CT'], prompt: { positive: 'Emphysema.', negative: 'No emphysema.' }, keywords: ['emphysema'] },
  { name: 'Pleural effusion', shape: 'dependent crescent layer', location: 'posterior lung base, one side or both', intensity: 'fluid density replacing lung', visibleIn: ['CT'], prompt: { positive: 'Pleural effusion.', negative: 'No pleural effusion.' }, keywords: ['pleural'] },
  { name: 'Atelectasis', shape: 'elongated thin plate', location: 'lower lung zones', intensity: 'hyperdense', visibleIn: ['CT'], prompt: { positive: 'Atelectasis.', negative: 'No atelectasis.' }, keywords: ['atelectasis'] },
  { name: 'Pericardial effusion', shape: 'ring (shell) around the heart', location: 'pericardium', intensity: 'fluid (8 HU) between myocardium and pericardial fat', visibleIn: ['CT'], prompt: { positive: 'Pericardial effusion.', negative: 'No pericardial effusion.' }, keywords: ['pericardial'] },
  { name: 'Cardiomegaly', shape: 'organ enlargement (heart scale ×1.24–1.38 vs ×0.90–1.04)', location: 'heart', intensity: 'soft tissue replacing lung and fat', visibleIn: ['CT'], prompt: { positive: 'Cardiomegaly.', negative: 'No cardiomegaly.' }, keywords: ['cardiomegaly', 'heart', 'cardiac'] },
  { name: 'Arterial wall calcification', shape: '3–7 small foci, 6–8 mm', location: 'aortic wall', intensity: 'very hyperdense (550–900 HU)', visibleIn: ['CT'], prompt: { positive: 'Arterial wall calcification.', negative: 'No arterial wall calcification.' }, keywords: ['calcif'] },
];

export const CT_TEXT: KindText = {
  findings: {
    'Lung nodule': {
      positive: ['Lung nodule in the {side} {zone} measuring {mm} mm.', 'There is a {mm} mm nodule in the {side} {zone}.', 'A {solid} pulmonary nodule measuring {mm} mm is seen in the {side} {zone}.', '{Side} {zone} lung nodule, {mm} mm.', 'Solitary {solid} nodule in the {side} lung.'],
      negative: ['No lung nodule.', 'No pulmonary nodules are identified.', 'There is no suspicious lung nodule.', 'No nodule is seen in either lung.'],
    },
    Consolidation: {
      positive: ['Consolidation in the {side} {zone}.', 'There is {extent} consolidation in the {side} {zone}.', 'Airspace consolidation involving the {side} {zone}.', '{Extent} consolidation of the {side} lung, likely infectious.'],
      negative: ['No consolidation.', 'No focal consolidation.', 'The lungs are clear without consolidation.', 'There is no airspace consolidation.'],
    },
    Emphysema: {
      positive: ['{Sev} emphysema in the upper lobes.', 'There is {sev} centrilobular emphysema with upper lobe predominance.', 'Emphysematous changes in both upper lobes, {sev}.', '{Sev} emphysema.'],
      negative: ['No emphysema.', 'No emphysematous changes.', 'There is no evidence of emphysema.'],
    },
    'Pleural effusion': {
      positive: ['{Size} {side} pleural {effusion}.', 'There is a {size} {side} pleural {effusion}.', '{Side} pleural {effusion}, {size}.', '{Size} amount of {side} pleural fluid.'],
      negative: ['No pleural effusion.', 'There is no pleural effusion.', 'No pleural fluid.'],
    },
    Atelectasis: {
      positive: ['Atelectasis in the {side} {zone}.', 'There is linear atelectasis in the {side} {zone}.', 'Plate-like atelectasis in the {side} {zone}.', '{Side} subsegmental atelectasis.'],
      negative: ['No atelectasis.', 'There is no atelectasis.', 'No evidence of atelectasis.'],
    },
    'Pericardial effusion': {
      positive: ['{Size} pericardial effusion.', 'There is a {size} pericardial effusion.', 'Pericardial fluid is present, {size}.', '{Size} pericardial effusion measuring up to {mm} mm.'],
      negative: ['No pericardial effusion.', 'There is no pericardial effusion.', 'No pericardial fluid.'],
    },
    Cardiomegaly: {
      positive: ['Cardiomegaly.', 'The heart is enlarged.', '{Sev} cardiomegaly.', 'There is {sev} enlargement of the cardiac silhouette.'],
      negative: ['No cardiomegaly.', 'The heart is normal in size.', 'Heart size is normal.'],
    },
    'Arterial wall calcification': {
      positive: ['Arterial wall calcification of the {part} aorta.', 'Calcified plaques in the {part} aorta.', 'Scattered atherosclerotic calcifications along the {part} aorta.', 'Aortic wall calcification, {count} foci.'],
      negative: ['No arterial wall calcification.', 'No aortic calcification.', 'There are no vascular calcifications.'],
    },
  },
  normal: ['No acute abnormality in the chest.', 'Unremarkable CT of the chest.', 'The lungs, heart and mediastinum are unremarkable.'],
  filler: ['The trachea and main bronchi are patent.', 'The thoracic vertebral bodies are intact.', 'The thyroid gland is unremarkable.', 'Mediastinal lymph nodes are within normal limits.', 'The visualized upper abdomen is unremarkable.', 'Mild degenerative changes of the thoracic spine.', 'Study performed without intravenous contrast.'],
  combined: [
    { findings: ['Pleural effusion', 'Pericardial effusion'], text: ['No pleural or pericardial effusion.', 'There is no pleural or pericardial effusion.'] },
    { findings: ['Consolidation', 'Lung nodule'], text: ['No consolidation or lung nodule.'] },
    { findings: ['Consolidation', 'Atelectasis'], text: ['No consolidation or atelectasis.'] },
  ],
};

interface CtAnatomy {
  h: number;
  bodyAx: number; bodyAy: number; fatT: number; muscleT: number;
  lungCx: number; lungCy: number; lungCz: number; lungAx: number; lungAy: number; lungAz: number;
  diaTop: number;
  heartScale: number; heartRot: number; heart: Ellipsoid; periFat: number; periEff: number;
  aorta: [Vec3, Vec3][]; aortaR: number;
  trachea: [Vec3, Vec3];
  spineY: number;
  ribPhase: number; ribPeriod: number;
  /** Cortical bone density (HU): varies between studies so the brightest voxels are not only calcifications. */
  bone: number;
  gas: Ellipsoid | null;
  tex: SmoothField; vesA: SmoothField; vesB: SmoothField;
}

function makeHeart(a: Pick<CtAnatomy, 'diaTop' | 'heartRot'>, hs: number): Ellipsoid {
  return new Ellipsoid([-20, 18, a.diaTop + 44 * hs], [56 * hs, 42 * hs, 46 * hs], rotZX(a.heartRot, 0));
}

function diaZ(a: CtAnatomy, x: number, y: number): number {
  const dx = Math.abs(x) - a.lungCx;
  return a.diaTop + (x > 0 ? 12 : 0) - 0.0045 * (dx * dx + (y - a.lungCy) * (y - a.lungCy));
}

/** Signed distance to the inside of the thoracic cavity (inside the ribs). */
function cavityDist(a: CtAnatomy, x: number, y: number): number {
  return ell2Dist(x, y, a.bodyAx, a.bodyAy) + a.fatT + a.muscleT + 9;
}

/** Lung membership weight of one side (+1 = right, −1 = left) or both (0). Heart and aorta carve it. */
function lungW(a: CtAnatomy, x: number, y: number, z: number, side = 0): number {
  const h = a.h;
  if (side !== 0 && side !== Math.sign(x)) return 0;
  const dl = lungDist(a, x, y, z);
  if (dl > h) return 0;
  let w = soft(dl, h) * soft(cavityDist(a, x, y) + 3, h) * soft(diaZ(a, x, y) - z, h);
  if (w === 0) return 0;
  w *= 1 - soft(a.heart.dist(x, y, z) - a.periEff - a.periFat, h);
  let da = Infinity;
  for (let i = 0; i < a.aorta.length; i++) {
    const sg = a.aorta[i]!;
    const d = segDist(x, y, z, sg[0], sg[1]);
    if (d < da) da = d;
  }
  return w * (1 - soft(da - a.aortaR, h));
}

// Allocation-free lung ellipsoid distance for the hot path.
function lungDist(a: CtAnatomy, x: number, y: number, z: number): number {
  const cx = x > 0 ? a.lungCx : -a.lungCx;
  const qx = (x - cx) / a.lungAx, qy = (y - a.lungCy) / a.lungAy, qz = (z - a.lungCz) / a.lungAz;
  const rho = Math.sqrt(qx * qx + qy * qy + qz * qz);
  const gx = qx / a.lungAx, gy = qy / a.lungAy, gz = qz / a.lungAz;
  return ((rho - 1) * rho) / Math.max(1e-9, Math.sqrt(gx * gx + gy * gy + gz * gz));
}

function ctValue(a: CtAnatomy, x: number, y: number, z: number, out: Sample): void {
  const h = a.h;
  const dB = ell2Dist(x, y, a.bodyAx, a.bodyAy);
  out.aux = 0;
  if (dB > h) {
    out.v = -1000;
    out.label = T.air;
    return;
  }
  const tex = a.tex.at(x, y, z);
  let lung = 0;
  let v = -1000, label: number = T.air;
  let m = soft(dB, h);
  v += m * (-100 + 8 * tex - v);
  if (m >= 0.5) label = T.fat;
  m = soft(dB + a.fatT, h);
  v += m * (45 + 6 * tex - v);
  if (m >= 0.5) label = T.soft;
  const dC = dB + a.fatT + a.muscleT; // inner muscle surface; ribs lie just inside it
  if (dC < h && dC > -9 - h) {
    const ph = (z + 0.35 * y + a.ribPhase) / a.ribPeriod;
    const rib = ph - Math.floor(ph) < 0.38 || (Math.abs(x) < 14 && y > 0);
    if (rib) {
      m = soft(Math.abs(dC + 4.5) - 4.5, h);
      v += m * (a.bone + 120 * tex - v);
      if (m >= 0.5) label = T.bone;
    }
  }
  const mc = soft(dC + 9, h); // thoracic/abdominal cavity
  if (mc > 0) {
    v += mc * (-70 + 10 * tex - v);
    if (mc >= 0.5) label = T.fat;
    const zd = diaZ(a, x, y);
    const below = mc * soft(z - zd, h);
    if (below > 0) {
      let abd = x > -15 ? 58 + 6 * tex : 36 + 6 * tex;
      if (a.gas) abd += soft(a.gas.dist(x, y, z), h) * (-1000 - abd);
      v += below * (abd - v);
      if (below >= 0.5) label = abd < -500 ? T.air : T.soft;
    }
    // Lungs
    const dl = lungDist(a, x, y, z);
    if (dl < h) {
      const ml = soft(dl, h) * soft(dC + 12, h) * soft(zd - z, h);
      if (ml > 0) {
        const n1 = a.vesA.at(x, y, z), n2 = a.vesB.at(x, y, z);
        const r = Math.sqrt(n1 * n1 + n2 * n2);
        const vw = r < 0.3 ? 1 - r / 0.3 : 0;
        const hil = Math.min(1, Math.max(0.4, 1.2 - (Math.abs(x) - 20) / 100));
        const lv = -860 + 22 * tex + vw * hil * 700;
        v += ml * (lv - v);
        lung = ml;
        if (ml >= 0.5) label = T.lung;
      }
    }
    // Heart with its shells: pericardial fat outside, effusion (when present) between fat and myocardium.
    const dh = a.heart.dist(x, y, z);
    const shell = a.periEff + a.periFat;
    if (dh < shell + h) {
      m = soft(dh - shell, h) * mc;
      lung *= 1 - m;
      v += m * (-90 + 8 * tex - v);
      if (m >= 0.5) label = T.fat;
      if (a.periEff > 0) {
        m = soft(dh - a.periEff, h) * mc;
        v += m * (8 + 4 * tex - v);
        if (m >= 0.5) label = T.fluid;
      }
      m = soft(dh, h) * mc;
      v += m * (45 + 5 * tex - v);
      if (m >= 0.5) label = T.heart;
    }
    let da = Infinity;
    for (let i = 0; i < a.aorta.length; i++) {
    const sg = a.aorta[i]!;
    const d = segDist(x, y, z, sg[0], sg[1]);
    if (d < da) da = d;
  }
    if (da < a.aortaR + h) {
      m = soft(da - a.aortaR, h);
      lung *= 1 - m;
      v += m * (42 + 4 * tex - v);
      if (m >= 0.5) label = T.aorta;
    }
    const dt = segDist(x, y, z, a.trachea[0], a.trachea[1]);
    if (dt < 11 + h) {
      m = soft(dt - 11, h);
      lung *= 1 - m;
      v += m * (30 - v);
      m = soft(dt - 8.5, h);
      v += m * (-1000 - v);
      if (m >= 0.5) label = T.air;
    }
  }
  // Spine: vertebral body with discs, canal behind it.
  const ds = len(x, y - a.spineY) - 17;
  if (ds < h) {
    const disc = ((z + 400) % 30) < 6;
    m = soft(ds, h);
    lung *= 1 - m;
    v += m * ((disc ? 80 : 0.55 * a.bone) + 25 * tex - v);
    if (m >= 0.5) label = T.bone;
  }
  const dcn = len(x, y - a.spineY + 27);
  if (dcn < 13 + h) {
    m = soft(dcn - 13, h);
    v += m * (a.bone - v);
    if (m >= 0.5) label = T.bone;
    m = soft(dcn - 7.5, h);
    v += m * (20 - v);
    if (m >= 0.5) label = T.soft;
  }
  out.v = v;
  out.label = label;
  out.aux = lung;
}

function sampleAnatomy(rng: Rng, fields: Rng, cfg: SynthConfig, h: number): CtAnatomy {
  const nu = cfg.nuisance;
  const body = 1 + rng.range(-0.16, 0.1) * nu;
  const lungS = 1 + rng.range(-0.12, 0.1) * nu;
  const a = {
    h,
    bodyAx: 152 * body * (1 + rng.range(-0.05, 0.05) * nu),
    bodyAy: 104 * body * (1 + rng.range(-0.06, 0.06) * nu),
    fatT: rng.range(5, 25),
    muscleT: rng.range(6, 16),
    lungCx: 68 * body,
    lungCy: -4 * body,
    diaTop: rng.range(-82, -48),
    lungAx: 58 * body,
    lungAy: 80 * body,
    lungAz: 170 * lungS,
    lungCz: 0,
    heartRot: rng.range(0.45, 0.8),
    periFat: rng.range(3, 7),
    periEff: 0,
    aortaR: rng.range(11, 14),
    ribPhase: rng.range(0, 30),
    ribPeriod: rng.range(24, 30),
    bone: rng.range(450, 850),
    spineY: 0,
  } as CtAnatomy;
  a.lungCz = a.diaTop + 150 * lungS - 20;
  a.spineY = -a.bodyAy + a.fatT + a.muscleT + 26;
  a.heartScale = rng.range(0.9, 1.04);
  a.heart = makeHeart(a, a.heartScale);
  const archZ = a.diaTop + rng.range(135, 160);
  const desc: Vec3 = [-22, a.spineY + 34, archZ];
  a.aorta = [
    [[6, 28, a.diaTop + 70], [6, 28, archZ]],
    [[6, 28, archZ], desc],
    [desc, [-18, a.spineY + 32, -400]],
  ];
  a.trachea = [[0, -6, archZ - 5], [0, -6, 400]];
  a.gas = rng.bool(0.7) ? new Ellipsoid([-62, 12, a.diaTop - 22], [rng.range(18, 30), rng.range(14, 22), rng.range(8, 14)]) : null;
  const ext = 220;
  a.tex = new SmoothField(fields, 12, ext);
  a.vesA = new SmoothField(fields, 22, ext);
  a.vesB = new SmoothField(fields, 22, ext);
  return a;
}

/** Placement attempts that found no point satisfying their constraints (tests assert this stays 0). */
export const placementStats = { failures: 0, calls: 0, lastFailure: '' };

/**
 * Draw a point in the box satisfying a constraint (rejection sampling). Constraints are tried from the
 * strictest to the loosest; if none can be met, the last draw is returned and counted as a failure.
 */
export function sampleWhere(what: string, rng: Rng, lo: Vec3, hi: Vec3, ok: ((p: Vec3) => boolean) | ((p: Vec3) => boolean)[], tries = 400): Vec3 {
  let p: Vec3 = [0, 0, 0];
  placementStats.calls++;
  for (const test of Array.isArray(ok) ? ok : [ok]) {
    for (let i = 0; i < tries; i++) {
      p = [rng.range(lo[0], hi[0]), rng.range(lo[1], hi[1]), rng.range(lo[2], hi[2])];
      if (test(p)) return p;
    }
  }
  placementStats.failures++;
  placementStats.lastFailure = what;
  return p;
}

const sideWord = (x: number): string => (x > 0 ? 'right' : 'left');

function zoneWord(a: CtAnatomy, p: Vec3): string {
  const dz = p[2] - a.diaTop;
  if (dz > 115) return 'upper lobe';
  if (dz < 60) return 'lower lobe';
  return p[0] > 0 ? 'middle lobe' : 'lingula';
}

function box(c: Vec3, r: number): { lo: Vec3; hi: Vec3 } {
  return { lo: [c[0] - r, c[1] - r, c[2] - r], hi: [c[0] + r, c[1] + r, c[2] + r] };
}

export interface KindPlanInput {
  cfg: SynthConfig;
  spacing: Vec3;
  /** Labels and anatomy stream. */
  rng: Rng;
  /** Smooth-field stream. */
  fields: Rng;
  /** Geometry stream of catalog finding k. */
  lesionRng(k: number): Rng;
  present: Record<string, boolean>;
  /** Render nothing of any finding (anatomy-drawn ones included). */
  omitLesions: boolean;
  noiseStream(scan: number): number;
}

export function planCt(inp: KindPlanInput): StudyPlan {
  const { cfg, rng, spacing } = inp;
  const h = (spacing[0] + spacing[1] + spacing[2]) / 3;
  const nu = cfg.nuisance;
  const a = sampleAnatomy(rng, inp.fields, cfg, h);
  const rot = rotZX(rng.range(-0.11, 0.11) * nu, rng.range(-0.045, 0.045) * nu);
  const shift: Vec3 = [rng.range(-10, 10) * nu, rng.range(-10, 10) * nu, rng.range(-25, 25) * nu];
  const scan: ScanPlan = {
    contrast: 'CT', series: 'CT', rot, shift,
    gain: 1 + rng.range(-0.06, 0.06) * nu,
    offset: rng.range(-25, 25) * nu,
    sigma: rng.range(14, 28) * cfg.noise,
    clip: [-1024, 3071],
    noiseStream: inp.noiseStream(0),
  };
  const ls = cfg.lesionSize;
  const fov = CT_FOV;
  // Canonical point → world (scan pose) is inside the field of view with a margin.
  const inFov = (p: Vec3, m: number): boolean => {
    const w0 = rot[0]! * p[0] + rot[1]! * p[1] + rot[2]! * p[2] + shift[0];
    const w1 = rot[3]! * p[0] + rot[4]! * p[1] + rot[5]! * p[2] + shift[1];
    const w2 = rot[6]! * p[0] + rot[7]! * p[1] + rot[8]! * p[2] + shift[2];
    return Math.abs(w0) < fov[2] / 2 - m && Math.abs(w1) < fov[1] / 2 - m && Math.abs(w2) < fov[0] / 2 - m;
  };
  const lungLo: Vec3 = [-(a.lungCx + a.lungAx), a.lungCy - a.lungAy, a.diaTop - 40];
  const lungHi: Vec3 = [a.lungCx + a.lungAx, a.lungCy + a.lungAy, a.lungCz + a.lungAz];
  const occupied: { c: Vec3; r: number }[] = [];
  const free = (p: Vec3, r: number): boolean => occupied.every((o) => len(p[0] - o.c[0], p[1] - o.c[1], p[2] - o.c[2]) > o.r + r);
  let effusionW: ((x: number, y: number, z: number) => number) | null = null;
  // Solid lesions keep clear of a present effusion so they stay visible.
  const inLung = (p: Vec3, m: number): boolean => lungW(a, p[0], p[1], p[2]) > 0.99 && lungW(a, p[0] + m, p[1], p[2]) > 0.5 && lungW(a, p[0] - m, p[1], p[2]) > 0.5
    && lungW(a, p[0], p[1] + m, p[2]) > 0.5 && lungW(a, p[0], p[1] - m, p[2]) > 0.5 && lungW(a, p[0], p[1], p[2] + m) > 0.5 && lungW(a, p[0], p[1], p[2] - m) > 0.5
    && (effusionW === null || (effusionW(p[0], p[1] - m, p[2]) === 0 && effusionW(p[0], p[1], p[2] - m) === 0));

  const plans: LesionPlan[] = [];
  const on = (name: string): boolean => inp.present[name] === true && !inp.omitLesions;
  const catalogIndex = (name: string): number => CT_FINDINGS.findIndex((f) => f.name === name);
  const want = new Set(cfg.findings);

  // Anatomy-drawn findings first: they change the organs other lesions are placed in.
  let altCardio: CtAnatomy | null = null;
  let altPeri: CtAnatomy | null = null;
  let bigHeart = a.heart;
  let normalHeart = a.heart;
  let periT = 0;
  if (want.has('Cardiomegaly')) {
    const r = inp.lesionRng(catalogIndex('Cardiomegaly'));
    const hsBig = r.range(1.24, 1.38);
    bigHeart = makeHeart(a, hsBig);
    if (on('Cardiomegaly')) {
      altCardio = { ...a };
      a.heartScale = hsBig;
      a.heart = bigHeart;
    }
  }
  if (want.has('Pericardial effusion')) {
    const r = inp.lesionRng(catalogIndex('Pericardial effusion'));
    periT = r.range(7, 15) * ls;
    if (on('Pericardial effusion')) {
      altPeri = { ...a };
      a.periEff = periT;
    }
  }
  if (altCardio) altCardio.periEff = a.periEff;
  const cf = (alt: CtAnatomy) => {
    const s: Sample = { v: 0, label: 0, aux: 0 };
    return (x: number, y: number, z: number): number => {
      ctValue(alt, x, y, z, s);
      return s.v;
    };
  };

  // Placement order: large regions first, so small solid lesions can keep clear of them.
  const order = ['Cardiomegaly', 'Pericardial effusion', 'Pleural effusion', 'Emphysema', 'Consolidation', 'Atelectasis', 'Lung nodule', 'Arterial wall calcification'];
  for (const name of order) {
    if (!want.has(name)) continue;
    const f = CT_FINDINGS[catalogIndex(name)]!;
    const present = inp.present[f.name] === true;
    const r = inp.lesionRng(catalogIndex(f.name));
    switch (f.name) {
      case 'Cardiomegaly': {
        const big = bigHeart, small = present ? normalHeart : a.heart;
        const bb = box(big.c, Math.max(...big.a) + h);
        plans.push({
          finding: f.name, present, sizeMm: 2 * (big.a[0] - small.a[0]), ...bb, parts: [],
          words: { sev: big.a[0] / 56 < 1.3 ? 'mild' : 'moderate' },
          region: (x, y, z) => Math.min(soft(big.dist(x, y, z), h), 1 - soft(small.dist(x, y, z), h)),
          ...(altCardio ? { counterfactual: cf(altCardio) } : {}),
        });
        break;
      }
      case 'Pericardial effusion': {
        const t = periT;
        const heart = a.heart;
        const bb = box(heart.c, Math.max(...heart.a) + t + h);
        plans.push({
          finding: f.name, present, sizeMm: t, ...bb, parts: [],
          words: { size: t < 10 ? 'small' : 'moderate', mm: String(Math.round(t)) },
          region: (x, y, z) => {
            const d = heart.dist(x, y, z);
            return Math.min(soft(d - t, h), 1 - soft(d, h));
          },
          ...(altPeri ? { counterfactual: cf(altPeri) } : {}),
        });
        break;
      }
      case 'Pleural effusion': {
        const u = r.uniform();
        const side = u < 0.4 ? 1 : u < 0.75 ? -1 : 0;
        const d = r.range(18, 40) * ls;
        const inAx = a.bodyAx - a.fatT - a.muscleT - 12, inAy = a.bodyAy - a.fatT - a.muscleT - 12;
        // Fluid fills the dependent (posterior) lung up to a level that falls towards the apex (meniscus).
        const level = (x: number, z: number): number => {
          const q = Math.min(1, Math.abs(x) / inAx);
          return -inAy * Math.sqrt(1 - q * q) + d - 0.3 * (z - a.diaTop);
        };
        const w = (x: number, y: number, z: number, _l: number, lung: number): number => (lung > 0 && (side === 0 || side === Math.sign(x)) ? lung * soft(y - level(x, z), h) : 0);
        if (present) effusionW = (x, y, z) => lungW(a, x, y, z, side) * soft(y - level(x, z), h);
        plans.push({
          finding: f.name, present, sizeMm: d, lo: [side > 0 ? 0 : lungLo[0], lungLo[1], lungLo[2]], hi: [side < 0 ? 0 : lungHi[0], level(0, a.diaTop - 40) + h, a.diaTop + d / 0.3 + h],
          parts: [{ weight: w, targets: [12] }],
          words: { side: side === 0 ? 'bilateral' : sideWord(side), size: d < 25 ? 'small' : d < 33 ? 'moderate' : 'large', effusion: side === 0 ? 'effusions' : 'effusion' },
        });
        break;
      }
      case 'Consolidation': {
        const R = r.range(20, 34) * ls;
        const c = sampleWhere(f.name, r, lungLo, lungHi, (p) => inLung(p, 10) && inFov(p, R));
        const fld = new SmoothField(r, 10, 1.6 * R, c);
        const target = r.range(-180, 10);
        occupied.push({ c, r: R });
        const w = (x: number, y: number, z: number, _l: number, lung: number): number => {
          if (lung === 0) return 0;
          const dd = len(x - c[0], y - c[1], z - c[2]);
          if (dd > 1.6 * R) return 0;
          return lung * soft(dd - R * (1 + 0.3 * fld.at(x, y, z)), h);
        };
        plans.push({
          finding: f.name, present, sizeMm: 2 * R, ...box(c, 1.6 * R), parts: [{ weight: w, targets: [target] }],
          words: { side: sideWord(c[0]), zone: zoneWord(a, c), extent: R < 26 ? 'patchy' : 'extensive' },
        });
        break;
      }
      case 'Emphysema': {
        const zMid = a.diaTop + r.range(70, 95);
        const thr = r.range(0.1, 0.5);
        const fld = new SmoothField(r, 13, 220);
        const w = (x: number, y: number, z: number, _l: number, lung: number): number => {
          if (lung === 0) return 0;
          const t = (fld.at(x, y, z) - thr) * 2.5;
          if (t <= 0) return 0;
          return lung * soft(zMid - z, 15) * (t > 1 ? 1 : t);
        };
        plans.push({
          finding: f.name, present, sizeMm: lungHi[2] - zMid, lo: [lungLo[0], lungLo[1], zMid - 8], hi: lungHi,
          parts: [{ weight: w, targets: [-985] }],
          words: { sev: thr > 0.35 ? 'mild' : thr > 0.2 ? 'moderate' : 'severe' },
        });
        break;
      }
      case 'Atelectasis': {
        const ax: Vec3 = [r.range(22, 38) * ls, r.range(10, 18) * ls, r.range(3, 5) * ls];
        const clear = (p: Vec3): boolean => {
          if (!effusionW) return true;
          for (const dx of [-1, 0, 1]) for (const dy of [-1, 0, 1]) for (const dz of [-1, 0, 1]) {
            if (effusionW(p[0] + dx * ax[0], p[1] + dy * ax[0], p[2] + dz * (ax[2] + h)) > 0) return false;
          }
          return true;
        };
        // Lower zones first; a large effusion can leave room only higher up.
        const low = (p: Vec3): boolean => p[2] < a.diaTop + 70;
        const c = sampleWhere(f.name, r, [lungLo[0], lungLo[1], a.diaTop], [lungHi[0], lungHi[1], a.diaTop + 120], [
          (p) => low(p) && inLung(p, 6) && inFov(p, 10) && free(p, ax[0]) && clear(p),
          (p) => low(p) && inLung(p, 6) && inFov(p, 10) && clear(p),
          (p) => inLung(p, 6) && inFov(p, 10) && clear(p),
        ]);
        occupied.push({ c, r: ax[0] });
        const e = new Ellipsoid(c, ax, rotZX(r.range(-Math.PI, Math.PI), r.range(-0.4, 0.4)));
        const target = r.range(-60, 30);
        const w = (x: number, y: number, z: number, _l: number, lung: number): number => (lung === 0 ? 0 : lung * soft(e.dist(x, y, z), h));
        plans.push({
          finding: f.name, present, sizeMm: 2 * ax[0], ...box(c, ax[0] + h), parts: [{ weight: w, targets: [target] }],
          words: { side: sideWord(c[0]), zone: zoneWord(a, c) },
        });
        break;
      }
      case 'Lung nodule': {
        const rad = r.range(5, 9.5) * ls;
        const ax: Vec3 = [rad, rad * r.range(0.8, 1.25), rad * r.range(0.8, 1.25)];
        const c = sampleWhere(f.name, r, lungLo, lungHi, (p) => inLung(p, rad + 4) && inFov(p, rad + 8) && free(p, rad + 4));
        occupied.push({ c, r: rad });
        const e = new Ellipsoid(c, ax, rotZX(r.range(-Math.PI, Math.PI), r.range(-0.5, 0.5)));
        const mm = Math.round(2 * Math.max(...ax));
        plans.push({
          finding: f.name, present, sizeMm: mm, ...box(c, Math.max(...ax) + h),
          parts: [{ weight: (x, y, z) => soft(e.dist(x, y, z), h), targets: [r.range(10, 50)] }],
          words: { side: sideWord(c[0]), zone: zoneWord(a, c), mm: String(mm), solid: r.pick(['solid', 'soft-tissue', 'noncalcified']) },
        });
        break;
      }
      case 'Arterial wall calcification': {
        const count = r.int(3, 7);
        const spots: { c: Vec3; r: number }[] = [];
        let onDesc = 0;
        for (let i = 0; i < count; i++) {
          // Segment by length, then a point on the wall; keep the spot inside the field of view.
          let c: Vec3 = [0, 0, 0];
          for (let t = 0; t < 100; t++) {
            const u = r.uniform();
            const seg = u < 0.2 ? 0 : u < 0.35 ? 1 : 2;
            const [p, q] = a.aorta[seg]!;
            const s = r.uniform();
            const ax: Vec3 = [p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1]), p[2] + s * (q[2] - p[2])];
            const th = r.range(0, 2 * Math.PI);
            // Perpendicular offset: the axis of segments 0 and 2 is ~z, of the arch ~xy.
            const dir: Vec3 = seg === 1 ? [0, 0, 1] : [Math.cos(th), Math.sin(th), 0];
            const sgn = seg === 1 && th > Math.PI ? -1 : 1;
            c = [ax[0] + sgn * dir[0] * (a.aortaR - 1), ax[1] + sgn * dir[1] * (a.aortaR - 1), ax[2] + sgn * dir[2] * (a.aortaR - 1)];
            if (inFov(c, 8) && c[2] > a.diaTop - 30) {
              if (seg === 2) onDesc++;
              break;
            }
          }
          spots.push({ c, r: r.range(2.8, 4.2) * ls });
        }
        const target = r.range(550, 900);
        let lo: Vec3 = [Infinity, Infinity, Infinity], hi: Vec3 = [-Infinity, -Infinity, -Infinity];
        for (const s of spots) {
          const b = box(s.c, s.r + h);
          lo = [Math.min(lo[0], b.lo[0]), Math.min(lo[1], b.lo[1]), Math.min(lo[2], b.lo[2])];
          hi = [Math.max(hi[0], b.hi[0]), Math.max(hi[1], b.hi[1]), Math.max(hi[2], b.hi[2])];
        }
        const w = (x: number, y: number, z: number): number => {
          let m = 0;
          for (const s of spots) {
            const dd = Math.abs(x - s.c[0]) + Math.abs(y - s.c[1]) + Math.abs(z - s.c[2]);
            if (dd > 2 * (s.r + h)) continue;
            m = Math.max(m, soft(len(x - s.c[0], y - s.c[1], z - s.c[2]) - s.r, h));
          }
          return m;
        };
        plans.push({
          finding: f.name, present, sizeMm: 2 * Math.max(...spots.map((s) => s.r)), lo, hi, parts: [{ weight: w, targets: [target] }],
          words: { part: onDesc > count / 2 ? 'descending' : 'thoracic', count: String(count) },
        });
        break;
      }
    }
  }
  return {
    scans: [scan],
    lesions: plans,
    value: (x, y, z, _s, out) => ctValue(a, x, y, z, out),
  };
}
