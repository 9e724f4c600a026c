// Zero-shot benchmark metadata exactly as the HLIP reference defines it: class lists, label-file columns,
// class merges and prompt templates, for the 2025 release (`zeroshot_metadata_{ct_rate,rad_chestct,
// pub_brain_5}.py` @ fe8d764) and the 2026 release (`zeroshot_metadata_{ctrate,radchestct,pubbrain5,mrrate,
// rsna,cq500}.py` @ 1ec4df68 / 9405e400 / c3c0756c / fd726efd). Spelling, capitalisation and typos (the CT
// template "onsistent with") are the reference's; changing them changes the text embeddings.
import { FormatError, HlipError } from '../errors.js';
import { parseCsv } from './csv.js';

export type BenchmarkName = 'ct-rate' | 'rad-chestct' | 'pub-brain-5' | 'mr-rate' | 'rsna' | 'cq500';
export const BENCHMARK_NAMES: readonly BenchmarkName[] = ['ct-rate', 'rad-chestct', 'pub-brain-5', 'mr-rate', 'rsna', 'cq500'];

/** Reference release whose prompts, scoring and metrics are used. */
export type Protocol = '2025' | '2026';

/**
 * How a study's scores come from the embeddings.
 * - `pair-softmax` (2025 chest CT): per class, softmax(exp(s)·f·[w_neg, w_pos]) and the score is the
 *   positive probability.
 * - `cosine` (2026 CT, MR-RATE, RSNA, CQ500): raw cosine f·w per class, no scale, no softmax.
 * - `scaled-logits` (Pub-Brain-5, both releases): exp(s)·f·w per class; the metrics take softmaxes over
 *   subsets of the classes.
 */
export type Scoring = 'pair-softmax' | 'cosine' | 'scaled-logits';

// ---------------------------------------------------------------------------------------------------------
// Class lists

export const CT_RATE_CLASSES = [
  'Emphysema', 'Atelectasis', 'Lung nodule', 'Lung opacity', 'Pulmonary fibrotic sequela', 'Pleural effusion',
  'Mosaic attenuation pattern', 'Peribronchial thickening', 'Consolidation', 'Bronchiectasis',
  'Interlobular septal thickening', 'Cardiomegaly', 'Pericardial effusion', 'Coronary artery wall calcification',
  'Hiatal hernia', 'Arterial wall calcification',
] as const;

/** Rad-ChestCT prompt classes of the 2025 release (CT-RATE's without "Mosaic attenuation pattern"). */
export const RAD_CHESTCT_PROMPT_CLASSES_2025 = CT_RATE_CLASSES.filter((c) => c !== 'Mosaic attenuation pattern');

export const CORONARY_CALCIFICATION = 'Coronary artery wall calcification';
export const ARTERIAL_CALCIFICATION = 'Arterial wall calcification';
export const CALCIFICATION = 'Calcification';

/** Rad-ChestCT evaluation classes (both releases): the two calcification classes merged into one, 14 in all. */
export const RAD_CHESTCT_CLASSES = [
  ...RAD_CHESTCT_PROMPT_CLASSES_2025.filter((c) => c !== CORONARY_CALCIFICATION && c !== ARTERIAL_CALCIFICATION),
  CALCIFICATION,
] as const;

export const PUB_BRAIN_5_HEADERS = ['Normal', 'Stroke', 'Glioma', 'Meningioma', 'Metastasis'] as const;
export const PUB_BRAIN_5_PROMPTS_2025 = ['No significant abnormalities', 'Acute stroke', 'Glioma', 'Meningioma', 'Metastasis'] as const;
export const PUB_BRAIN_5_CLASSNAMES_2026 = ['no significant abnormalities', 'acute stroke', 'glioma', 'meningioma', 'metastasis'] as const;

export const MR_RATE_CLASSES = [
  'Cerebral infarction', 'Cerebral hemorrhage', 'Metastatic malignant neoplasm to brain', 'Intracranial meningioma',
  'Demyelinating disease of central nervous system', 'Herniation of nucleus pulposus', 'Spinal cord compression',
  'Lacunar infarct', 'Silent micro-hemorrhage of brain', 'Cavernous hemangioma', 'Subdural intracranial hemorrhage',
  'Gliosis', 'Cerebral atrophy', 'Encephalomalacia', 'Arachnoid cyst', 'Empty sella syndrome', 'Intracranial aneurysm',
  'Chiari malformation', 'Schwannoma', 'Cyst of pineal gland', 'Hemangioma of vertebral column', "Rathke's pouch cyst",
  'Cerebral edema', 'Spinal stenosis', 'Mastoiditis', 'Chronic mastoiditis', 'Ventriculomegaly', 'Cerebellar degeneration',
  'Mega cisterna magna', 'Structure of cave of septum pellucidum', 'Hyperostosis of skull', 'Watershed infarct',
  'Choroid plexus cyst', 'Foraminal Spinal Stenosis', 'Lipoma of brain', 'Glioma', 'Pituitary adenoma',
] as const;

export const RSNA_HEADERS = ['Any', 'Epidural', 'Intraparenchymal', 'Intraventricular', 'Subarachnoid', 'Subdural'] as const;
export const RSNA_CLASSNAMES = [
  'intracranial hemorrhage', 'epidural hemorrhage', 'intraparenchymal hemorrhage', 'intraventricular hemorrhage',
  'subarachnoid hemorrhage', 'subdural hemorrhage',
] as const;

export const CQ500_HEADERS = ['ICH', 'IPH', 'IVH', 'SDH', 'EDH', 'SAH', 'BleedLocation-Left', 'BleedLocation-Right', 'Fracture', 'MassEffect', 'MidlineShift'] as const;
export const CQ500_CLASSNAMES = [
  'intracranial hemorrhage', 'intraparenchymal hemorrhage', 'intraventricular hemorrhage', 'subdural hemorrhage',
  'extradural hemorrhage', 'subarachnoid hemorrhage', 'left-sided intracranial hemorrhage',
  'right-sided intracranial hemorrhage', 'skull fracture', 'mass effect', 'midline shift',
] as const;

// ---------------------------------------------------------------------------------------------------------
// Prompt templates

/** 2025 chest CT: one template per prompt; `volume` is the evaluation default, `organ` the training one. */
export type CtTemplate2025 = 'volume' | 'organ';

const ORGANS_2025: Record<string, 'lung' | 'heart' | 'esophagus' | 'aorta'> = {
  Emphysema: 'lung', Atelectasis: 'lung', 'Lung nodule': 'lung', 'Lung opacity': 'lung',
  'Pulmonary fibrotic sequela': 'lung', 'Pleural effusion': 'lung', 'Mosaic attenuation pattern': 'lung',
  'Peribronchial thickening': 'lung', Consolidation: 'lung', Bronchiectasis: 'lung',
  'Interlobular septal thickening': 'lung', Cardiomegaly: 'heart', 'Pericardial effusion': 'heart',
  'Coronary artery wall calcification': 'heart', 'Hiatal hernia': 'esophagus', 'Arterial wall calcification': 'aorta',
};

/** 2025 (negative, positive) prompt pairs; under the `volume` template two pairs are overridden (below). */
const CT_PAIRS_2025: Record<string, readonly [string, string]> = {
  Emphysema: ['Not emphysema', 'Emphysema'],
  Atelectasis: ['Not atelectatic', 'Atelectasis'],
  'Lung nodule': ['Not nodule', 'Nodule'],
  'Lung opacity': ['Not opacity', 'Opacity'],
  'Pulmonary fibrotic sequela': ['Not pulmonary fibrotic sequela', 'Pulmonary fibrotic sequela'],
  'Pleural effusion': ['Not pleural effusion', 'Pleural effusion'],
  'Mosaic attenuation pattern': ['Not mosaic attenuation pattern', 'Mosaic attenuation pattern'],
  'Peribronchial thickening': ['Not peribronchial thickening', 'Peribronchial thickening'],
  Consolidation: ['Not consolidation', 'Consolidation'],
  Bronchiectasis: ['Not bronchiectasis', 'Bronchiectasis'],
  'Interlobular septal thickening': ['Not interlobular septal thickening', 'Interlobular septal thickening'],
  Cardiomegaly: ['Not cardiomegaly', 'Cardiomegaly'],
  'Pericardial effusion': ['Not pericardial effusion', 'Pericardial effusion'],
  'Coronary artery wall calcification': ['Not coronary artery wall calcification', 'Coronary artery wall calcification'],
  'Hiatal hernia': ['Not hiatal hernia', 'Hiatal hernia'],
  'Arterial wall calcification': ['Not arterial wall calcification', 'Arterial wall calcification'],
};

/** The eval scripts' override when the template is not `organ`. */
const CT_VOLUME_OVERRIDES_2025: Record<string, readonly [string, string]> = {
  'Lung nodule': ['Not lung nodule', 'Lung nodule'],
  'Lung opacity': ['Not lung opacity', 'Lung opacity'],
};

/** 2026 CT-RATE and Rad-ChestCT templates (the typo "onsistent" is the reference's). */
export const CT_TEMPLATES_2026: readonly ((c: string) => string)[] = [
  (c) => `This study shows: there is ${c}.`,
  (c) => `This study shows: ${c} is observed.`,
  (c) => `This study shows: ${c} is present.`,
  (c) => `This study shows: onsistent with ${c}.`,
  (c) => `This study shows: compatible with ${c}.`,
];

const STUDY_SUFFIXES = ['identified', 'noted', 'seen'];
const STUDY_PREFIXES = [
  'new', 'known', 'prominent', 'likely', 'possibly', 'indicating', 'reflecting', 'representing', 'suggesting',
  'indicative of', 'suggestive of', 'related to', 'consistent with', 'compatible with',
];

/** 2026 MR-RATE, RSNA and CQ500 templates: 1 + 3 + 14 = 18, in the reference's order. */
export const STUDY_TEMPLATES_2026: readonly ((c: string) => string)[] = [
  (c) => `This study shows: ${c}.`,
  ...STUDY_SUFFIXES.map((s) => (c: string) => `This study shows: ${c} ${s}.`),
  ...STUDY_PREFIXES.map((p) => (c: string) => `This study shows: ${p} ${c}.`),
];

const NORMAL_2026 = 'no significant abnormalities';

/** 2026 Pub-Brain-5: the 18 templates, except that the normal class always reads "This study shows: no significant abnormalities." */
export const PUB_BRAIN_5_TEMPLATES_2026: readonly ((c: string) => string)[] = STUDY_TEMPLATES_2026.map((t, i) =>
  i === 0 ? t : (c: string) => (c !== NORMAL_2026 ? t(c) : `This study shows: ${NORMAL_2026}.`),
);

export const PUB_BRAIN_5_TEMPLATE_2025 = (c: string): string => `This MRI study shows: ${c}.`;

/** One score column of a benchmark and the prompt texts behind it. */
export interface PromptClass {
  /** Score-file column name (the reference's class name). */
  name: string;
  /**
   * Classifier columns, each a list of texts whose normalised text embeddings are averaged and
   * re-normalised (open_clip `build_zero_shot_classifier`). `pair-softmax`: [negative, positive].
   */
  columns: string[][];
}

export interface PromptSet {
  benchmark: BenchmarkName;
  protocol: Protocol;
  scoring: Scoring;
  classes: PromptClass[];
}

export interface PromptOptions {
  /** 2025 chest CT only: `volume` (default, as the reference's evaluation) or `organ`. */
  ctTemplate?: CtTemplate2025;
}

function ctPairs2025(classes: readonly string[], template: CtTemplate2025): PromptClass[] {
  return classes.map((c) => {
    const pair = (template !== 'organ' ? CT_VOLUME_OVERRIDES_2025[c] : undefined) ?? CT_PAIRS_2025[c]!;
    const t = template === 'organ' ? (p: string) => `The ${ORGANS_2025[c]} shows: ${p}.` : (p: string) => `The volume shows: ${p}.`;
    return { name: c, columns: [[t(pair[0])], [t(pair[1])]] };
  });
}

function templated(names: readonly string[], templates: readonly ((c: string) => string)[], columnNames: readonly string[] = names): PromptClass[] {
  return names.map((c, i) => ({ name: columnNames[i]!, columns: [templates.map((t) => t(c))] }));
}

/** The reference's zero-shot prompts for a benchmark and release. */
export function zeroShotPrompts(benchmark: BenchmarkName, protocol: Protocol = defaultProtocol(benchmark), opts: PromptOptions = {}): PromptSet {
  checkProtocol(benchmark, protocol);
  const set = (scoring: Scoring, classes: PromptClass[]): PromptSet => ({ benchmark, protocol, scoring, classes });
  switch (benchmark) {
    case 'ct-rate':
      return protocol === '2025' ? set('pair-softmax', ctPairs2025(CT_RATE_CLASSES, opts.ctTemplate ?? 'volume')) : set('cosine', templated(CT_RATE_CLASSES, CT_TEMPLATES_2026));
    case 'rad-chestct':
      return protocol === '2025' ? set('pair-softmax', ctPairs2025(RAD_CHESTCT_PROMPT_CLASSES_2025, opts.ctTemplate ?? 'volume')) : set('cosine', templated(RAD_CHESTCT_CLASSES, CT_TEMPLATES_2026));
    case 'pub-brain-5':
      return protocol === '2025'
        ? set('scaled-logits', templated(PUB_BRAIN_5_PROMPTS_2025, [PUB_BRAIN_5_TEMPLATE_2025], PUB_BRAIN_5_HEADERS))
        : set('scaled-logits', templated(PUB_BRAIN_5_CLASSNAMES_2026, PUB_BRAIN_5_TEMPLATES_2026, PUB_BRAIN_5_HEADERS));
    case 'mr-rate':
      return set('cosine', templated(MR_RATE_CLASSES, STUDY_TEMPLATES_2026));
    case 'rsna':
      return set('cosine', templated(RSNA_CLASSNAMES, STUDY_TEMPLATES_2026, RSNA_HEADERS));
    case 'cq500':
      return set('cosine', templated(CQ500_CLASSNAMES, STUDY_TEMPLATES_2026, CQ500_HEADERS));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Benchmark descriptions

export interface BenchmarkInfo {
  name: BenchmarkName;
  title: string;
  /** Releases whose zero-shot protocol exists for this benchmark. */
  protocols: readonly Protocol[];
  /** Id column of the published label file. */
  idColumn: string;
  /** Evaluation classes = label columns after merges, in the reference's order. */
  classes: readonly string[];
  /** Other names a score-file column may carry for a class (the 2026 prompt class names). */
  aliases: Readonly<Record<string, string>>;
}

const zipAliases = (headers: readonly string[], names: readonly string[]) => Object.fromEntries(headers.map((h, i) => [h, names[i]!]));

export const BENCHMARKS: Readonly<Record<BenchmarkName, BenchmarkInfo>> = {
  'ct-rate': { name: 'ct-rate', title: 'CT-RATE (validation)', protocols: ['2025', '2026'], idColumn: 'VolumeName', classes: CT_RATE_CLASSES, aliases: {} },
  'rad-chestct': { name: 'rad-chestct', title: 'Rad-ChestCT', protocols: ['2025', '2026'], idColumn: 'NoteAcc_DEID', classes: RAD_CHESTCT_CLASSES, aliases: {} },
  'pub-brain-5': { name: 'pub-brain-5', title: 'Pub-Brain-5', protocols: ['2025', '2026'], idColumn: 'study', classes: PUB_BRAIN_5_HEADERS, aliases: zipAliases(PUB_BRAIN_5_HEADERS, PUB_BRAIN_5_CLASSNAMES_2026) },
  'mr-rate': { name: 'mr-rate', title: 'MR-RATE (test)', protocols: ['2026'], idColumn: 'study_uid', classes: MR_RATE_CLASSES, aliases: {} },
  rsna: { name: 'rsna', title: 'RSNA intracranial hemorrhage', protocols: ['2026'], idColumn: 'study', classes: RSNA_HEADERS, aliases: zipAliases(RSNA_HEADERS, RSNA_CLASSNAMES) },
  cq500: { name: 'cq500', title: 'CQ500', protocols: ['2026'], idColumn: 'study', classes: CQ500_HEADERS, aliases: zipAliases(CQ500_HEADERS, CQ500_CLASSNAMES) },
};

export function benchmarkInfo(name: string): BenchmarkInfo {
  const b = (BENCHMARKS as Record<string, BenchmarkInfo>)[name];
  if (!b) throw new HlipError('config', `unknown benchmark '${name}' (one of ${BENCHMARK_NAMES.join(', ')})`);
  return b;
}

/** 2025 where the reference has both (its published results are 2025), else the only one. */
export function defaultProtocol(name: BenchmarkName): Protocol {
  return benchmarkInfo(name).protocols[0]!;
}

export function checkProtocol(name: BenchmarkName, protocol: string): asserts protocol is Protocol {
  const b = benchmarkInfo(name);
  if (!(b.protocols as readonly string[]).includes(protocol)) {
    throw new HlipError('config', `benchmark ${name} has no ${protocol} zero-shot protocol in the reference (available: ${b.protocols.join(', ')})`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Case ids and label files

const EXTENSIONS = /\.(nii\.gz|nii|pt|pth|npz|npy|nrrd|mha|mhd|dcm|safetensors|json|gz)$/i;

/** Path components of a key, last first, with trailing separators ignored. */
function components(key: string): string[] {
  return key.trim().split(/[/\\]+/).filter((p) => p !== '').reverse();
}

function stripExtensions(name: string): string {
  let s = name;
  for (let prev = ''; prev !== s; ) {
    prev = s;
    s = s.replace(EXTENSIONS, '');
  }
  return s;
}

/** Case id of a path or id: its file name without directories and (known medical/tensor) extensions. */
export function caseId(key: string): string {
  return stripExtensions(components(key)[0] ?? '');
}

/**
 * Ids a score-file key may stand for, in order of preference: the file name, then each enclosing folder
 * (so `…/<study>/<series>/img.pt` finds `<study>`), each also without an `RSNA_` prefix (the reference's
 * RSNA cases are `RSNA_<study>/<series uid>`).
 */
export function caseIdCandidates(key: string): string[] {
  const out: string[] = [];
  for (const c of components(key)) {
    const id = stripExtensions(c);
    out.push(id);
    if (id.startsWith('RSNA_')) out.push(id.slice(5));
  }
  return out;
}

export interface LabelTable {
  benchmark: BenchmarkName;
  source: string;
  /** First-column values as published (Pub-Brain-5: study paths, whose folders name the source data set). */
  keys: string[];
  /** `caseId(key)` per row. */
  ids: string[];
  /** Evaluation classes (after merges). */
  classes: string[];
  /** Row-major 0/1 labels, `ids.length × classes.length`. */
  values: Uint8Array;
}

function labelValue(v: string, source: string, line: number, column: string): number {
  const x = Number(v.trim());
  if (v.trim() === '' || !(x === 0 || x === 1)) throw new FormatError(source, `line ${line}, column '${column}': label must be 0 or 1, got '${v}'`);
  return x;
}

/**
 * Parse a benchmark's label file in its published format. Columns are found by name (extra columns are
 * ignored, as the reference does). Rad-ChestCT: the label of the merged "Calcification" class is the
 * "Calcification" column when the file has one, else "Coronary artery wall calcification" (the reference:
 * the two columns are copies of Rad-ChestCT's single calcification label).
 */
export function parseLabels(benchmark: BenchmarkName, text: string, source: string): LabelTable {
  const info = benchmarkInfo(benchmark);
  const csv = parseCsv(text, source);
  const idCol = csv.header.indexOf(info.idColumn);
  if (idCol < 0) throw new FormatError(source, `no '${info.idColumn}' column (header: ${csv.header.join(', ')}); is this a ${benchmark} label file?`);
  const cols = info.classes.map((c) => {
    let name = c;
    if (benchmark === 'rad-chestct' && c === CALCIFICATION && !csv.header.includes(CALCIFICATION)) name = CORONARY_CALCIFICATION;
    const i = csv.header.indexOf(name);
    return { name, i };
  });
  const missing = cols.filter((c) => c.i < 0).map((c) => c.name);
  if (missing.length) throw new FormatError(source, `missing label column(s): ${missing.join(', ')}`);
  const n = csv.rows.length;
  const k = cols.length;
  const values = new Uint8Array(n * k);
  const keys: string[] = [];
  const ids: string[] = [];
  const seen = new Map<string, number>();
  csv.rows.forEach((row, r) => {
    const key = row[idCol]!.trim();
    const id = caseId(key);
    if (id === '') throw new FormatError(source, `line ${csv.lines[r]}: empty ${info.idColumn}`);
    const prev = seen.get(id);
    if (prev !== undefined) throw new FormatError(source, `lines ${csv.lines[prev]} and ${csv.lines[r]} both have case id '${id}'`);
    seen.set(id, r);
    keys.push(key);
    ids.push(id);
    cols.forEach((c, j) => (values[r * k + j] = labelValue(row[c.i]!, source, csv.lines[r]!, c.name)));
  });
  return { benchmark, source, keys, ids, classes: [...info.classes], values };
}
