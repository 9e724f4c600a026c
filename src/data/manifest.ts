// The reference study manifest (spec §5.5, data/brainmri220k/example.json; also what `hlip synth` writes):
//   { "<study_id>": { "series": { "<series>": {"num_slices": int, "view": "axial"|"sagittal"|"coronal"}, … },
//                     "report_length"?: int, "report": ["sentence", …] }, … }
// and where a study's volumes live: <root>/<study_id>/<series>.nii.gz, <root>/<study_id>/<series>.nii, or a
// DICOM folder <root>/<study_id>/<series>/. File access goes through `StudyFiles` so the same code reads
// Node paths (src/node/dataset.ts) and browser Files (./study-files.ts).
import { FormatError } from '../errors.js';
import type { Volume } from '../io/volume.js';

export type SeriesView = 'axial' | 'sagittal' | 'coronal';

export interface SeriesInfo {
  name: string;
  /** Slice count the manifest records (informational; the volume's own size is what is read). */
  numSlices?: number;
  view?: SeriesView;
}

export interface StudyEntry {
  id: string;
  /** In manifest order. */
  series: SeriesInfo[];
  /** Report sentences, in manifest order. */
  report: string[];
  reportLength?: number;
}

export interface Manifest {
  /** File (or other label) the manifest came from. */
  source: string;
  studies: StudyEntry[];
}

const VIEWS: ReadonlySet<string> = new Set(['axial', 'sagittal', 'coronal']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** A study id or series name becomes one path component: nothing that could leave the data root. */
function checkName(name: string, what: string, fail: (msg: string) => never): void {
  if (name.length === 0 || name === '.' || name === '..' || /[/\\\0]/.test(name)) fail(`${what} '${name}' cannot be used as a file name`);
}

/**
 * Parse a manifest from JSON text or an already-parsed value. Every defect is a FormatError naming the
 * source and the study.
 */
export function parseManifest(input: string | unknown, source = '<manifest>'): Manifest {
  let root: unknown = input;
  if (typeof input === 'string') {
    try {
      root = JSON.parse(input);
    } catch (e) {
      throw new FormatError(source, `manifest is not valid JSON: ${(e as Error).message}`, e);
    }
  }
  if (!isObject(root)) throw new FormatError(source, `manifest must be a JSON object {study_id: {series, report}}, got ${kindOf(root)}`);
  const studies: StudyEntry[] = [];
  for (const [id, raw] of Object.entries(root)) {
    const fail = (msg: string): never => {
      throw new FormatError(source, `study '${id}': ${msg}`);
    };
    checkName(id, 'study id', fail);
    if (!isObject(raw)) fail(`entry must be an object with "series" and "report", got ${kindOf(raw)}`);
    const entry = raw as Record<string, unknown>;
    const seriesRaw = entry.series;
    if (!isObject(seriesRaw)) fail(`"series" must be an object {name: {num_slices, view}}, got ${kindOf(seriesRaw)}`);
    const series: SeriesInfo[] = [];
    for (const [name, info] of Object.entries(seriesRaw as Record<string, unknown>)) {
      checkName(name, 'series name', fail);
      if (!isObject(info)) fail(`series '${name}' must be an object {num_slices, view}, got ${kindOf(info)}`);
      const s: SeriesInfo = { name };
      const { num_slices: ns, view } = info as Record<string, unknown>;
      if (ns !== undefined) {
        if (typeof ns !== 'number' || !Number.isInteger(ns) || ns < 1) fail(`series '${name}': num_slices must be a positive integer, got ${JSON.stringify(ns)}`);
        s.numSlices = ns as number;
      }
      if (view !== undefined) {
        if (typeof view !== 'string' || !VIEWS.has(view)) fail(`series '${name}': view must be "axial", "sagittal" or "coronal", got ${JSON.stringify(view)}`);
        s.view = view as SeriesView;
      }
      series.push(s);
    }
    if (series.length === 0) fail('"series" is empty: a study needs at least one scan');
    const report = entry.report;
    if (!Array.isArray(report)) fail(`"report" must be a list of sentences, got ${kindOf(report)}`);
    const sentences = report as unknown[];
    sentences.forEach((t, i) => {
      if (typeof t !== 'string') fail(`report sentence ${i} must be a string, got ${kindOf(t)}`);
    });
    if (sentences.length === 0) fail('"report" is empty');
    const st: StudyEntry = { id, series, report: sentences as string[] };
    const rl = entry.report_length;
    if (rl !== undefined) {
      if (typeof rl !== 'number' || !Number.isInteger(rl) || rl < 0) fail(`report_length must be a non-negative integer, got ${JSON.stringify(rl)}`);
      st.reportLength = rl as number;
    }
    studies.push(st);
  }
  if (studies.length === 0) throw new FormatError(source, 'manifest holds no study');
  return { source, studies };
}

/** What a StudyFiles path points at. `stamp` changes when the content does (size, mtime): it keys caches. */
export interface FileInfo {
  kind: 'file' | 'dir';
  stamp?: string;
}

export interface VolumeReadSettings {
  /** 'native' keeps the storage order; otherwise a target orientation code (default 'RPI'). */
  orientation?: string;
  /** NaN/±Inf voxels: 'error' (default) or 'zero'. */
  nonFinite?: 'error' | 'zero';
}

/**
 * Read access to a data root. Paths are relative to the root and use '/' separators. Implementations:
 * `nodeStudyFiles` (src/node/dataset.ts) and `mapStudyFiles` (browser Files or in-memory bytes).
 */
export interface StudyFiles {
  /** The root, for error messages. */
  readonly name: string;
  /** What lies at `path`, or null when nothing does. */
  stat(path: string): Promise<FileInfo | null>;
  /** The volume at `path`: a NIfTI file, or a folder holding one DICOM series. */
  readVolume(path: string, opts: VolumeReadSettings): Promise<Volume>;
}

export interface SeriesLocation {
  /** Path relative to the data root. */
  path: string;
  format: 'nifti' | 'dicom';
  stamp?: string;
}

/** Candidate paths of one series, in the order they are tried. */
export function seriesCandidates(studyId: string, series: string): { path: string; kind: FileInfo['kind']; format: SeriesLocation['format'] }[] {
  const base = `${studyId}/${series}`;
  return [
    { path: `${base}.nii.gz`, kind: 'file', format: 'nifti' },
    { path: `${base}.nii`, kind: 'file', format: 'nifti' },
    { path: base, kind: 'dir', format: 'dicom' },
  ];
}

/** Find a series' volume under the data root; a FormatError listing what was tried when none exists. */
export async function resolveSeries(files: StudyFiles, studyId: string, series: string): Promise<SeriesLocation> {
  const cands = seriesCandidates(studyId, series);
  for (const c of cands) {
    const info = await files.stat(c.path);
    if (info && info.kind === c.kind) return { path: c.path, format: c.format, ...(info.stamp !== undefined ? { stamp: info.stamp } : {}) };
  }
  throw new FormatError(files.name, `study '${studyId}': no volume for series '${series}' (tried ${cands.map((c) => c.path + (c.kind === 'dir' ? '/' : '')).join(', ')})`);
}
