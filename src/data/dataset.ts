// StudyDataset (browser-safe): the studies of a manifest as model inputs. Item `i` of epoch `e` is
// [numScans, D, H, W] float32 images (each scan read, preprocessed to the model grid and cached) and the
// report text, both pure functions of (seed, e, i) (see ./random.ts).
//
// Scan sampling as the reference loaders (spec §5.6, delta §3.2): train shuffles the study's scan list,
// repeats it ceil(n / len) times and keeps the first n; eval keeps the manifest order and repeats — the
// reference then keeps the whole repeated list (a study with 9 scans gives 9 at eval, not n), which
// `evalScans: 'reference'` reproduces; the default 'exact' truncates to n so batches stack.
import { ShapeError, HlipError } from '../errors.js';
import type { Volume } from '../io/volume.js';
import { resolveSeries, type Manifest, type SeriesLocation, type StudyEntry, type StudyFiles, type VolumeReadSettings } from './manifest.js';
import { centerPadCrop, HLIP_MEAN, HLIP_STD, normalize, preprocessCt, preprocessMri, volumeGrid, type CtPreprocessOptions, type MriScanOptions } from './preprocess.js';
import { checkSeed, DataRng } from './random.js';
import { defaultReportPrefix, reportText, sentenceText, TEXT_MODES, type TextMode } from './report.js';
import type { Grid3, Shape3 } from './resample.js';
import { fromCached, MemoryScanCache, numelOf, scanKey, toCached, type CacheDType, type CachedScan, type ScanCache, type ScanKey } from './scan-cache.js';

/**
 * How a volume becomes one scan of the model input (the target grid is the dataset's `shape`):
 * - 'ct': HU window, resample to spacing, centre pad/crop (or resize) to `shape`, normalise (preprocessCt).
 * - 'mri': RPI, depth = largest-spacing axis, percentile clip, square pad, bilinear to `resize` (default
 *   round(H · 256 / 224), i.e. 256 for 224), nearest-exact depth to D, centre crop to H × W (H = W), normalise.
 * - 'prepared': values already on the model grid (e.g. [0, 1] volumes as the reference's img.pt): x · scale,
 *   centre pad/crop to `shape`, normalise.
 */
export type ScanPipeline =
  | ({ kind: 'ct' } & Omit<CtPreprocessOptions, 'size'>)
  | ({ kind: 'mri'; resize?: number; mean?: number; std?: number } & MriScanOptions)
  | { kind: 'prepared'; scale?: number; mean?: number; std?: number };

/** One scan of the model input from a volume: a [D, H, W] grid of exactly `shape`. */
export function preprocessScan(vol: Volume, pipeline: ScanPipeline, shape: Shape3): Grid3 {
  let g: Grid3;
  if (pipeline.kind === 'ct') {
    const { kind: _k, ...opts } = pipeline;
    g = preprocessCt(vol, { ...opts, size: shape });
  } else if (pipeline.kind === 'mri') {
    const [d, h, w] = shape;
    if (h !== w) throw new ShapeError(`MRI input grid must be square in-plane (reference crop), got ${shape.join('×')}`);
    const { kind: _k, resize, ...opts } = pipeline;
    g = preprocessMri(vol, { ...opts, numSlices: d, crop: h, resize: resize ?? Math.round((h * 256) / 224) });
  } else {
    const { grid } = volumeGrid(vol);
    const s = pipeline.scale ?? 1;
    const scaled = s === 1 ? grid : { data: grid.data.map((v) => Math.fround(v * s)), shape: grid.shape };
    g = normalize(centerPadCrop(scaled, shape), pipeline.mean ?? HLIP_MEAN, pipeline.std ?? HLIP_STD);
  }
  if (g.shape[0] !== shape[0] || g.shape[1] !== shape[1] || g.shape[2] !== shape[2]) {
    throw new ShapeError(`${vol.source}: preprocessing gave ${g.shape.join('×')}, expected ${shape.join('×')}`);
  }
  return g;
}

export type EvalScanMode = 'exact' | 'reference';

/** One scan to decode and preprocess (plain data, so it can be posted to a worker). */
export interface ScanJob {
  /** StudyFiles name (the data root) and the path below it. */
  root: string;
  path: string;
  read: VolumeReadSettings;
  pipeline: ScanPipeline;
  shape: Shape3;
}

/**
 * Decodes and preprocesses one scan to `shape` values. The default reads through the dataset's StudyFiles
 * in this thread; a worker pool can take its place (the job is structured-cloneable).
 */
export type ScanProcessor = (job: ScanJob, files: StudyFiles) => Promise<Float32Array>;

export const processScanInThread: ScanProcessor = async (job, files) => preprocessScan(await files.readVolume(job.path, job.read), job.pipeline, job.shape).data;

/**
 * The scans of one study sample: with `rng` (train) a shuffled copy, repeated ceil(n / len) times,
 * first n kept; without (eval) manifest order repeated ceil(n / len) times, truncated to n ('exact') or
 * kept whole ('reference', the reference's validation quirk).
 */
export function sampleScans<T>(scans: readonly T[], numScans: number, rng?: DataRng | null, evalMode: EvalScanMode = 'exact'): T[] {
  if (!Number.isInteger(numScans) || numScans < 1) throw new HlipError('config', `numScans must be a positive integer, got ${numScans}`);
  if (scans.length === 0) throw new ShapeError('a study without scans cannot be sampled');
  const list = rng ? rng.shuffle([...scans]) : [...scans];
  const reps = Math.ceil(numScans / list.length);
  const out: T[] = [];
  for (let r = 0; r < reps; r++) out.push(...list);
  return !rng && evalMode === 'reference' ? out : out.slice(0, numScans);
}

export interface StudyDatasetOptions {
  manifest: Manifest;
  files: StudyFiles;
  pipeline: ScanPipeline;
  /** Model grid of one scan [D, H, W], e.g. [112, 336, 336] (CT), [48, 224, 224] (MRI) or [24, 48, 48]. */
  shape: Shape3;
  /** Scans per study (reference: 1 for CT-RATE, 6–8 for brain MRI). */
  numScans: number;
  /** Train: shuffled scan choice and sentence order. Eval: manifest order. */
  train: boolean;
  seed?: number;
  /** Eval scan count: 'exact' (default) gives numScans; 'reference' keeps the whole repeated list. */
  evalScans?: EvalScanMode;
  /** Default: train. */
  shuffleReport?: boolean;
  /** Default: "This CT study shows: " for 'ct', "This MRI study shows: " otherwise. */
  reportPrefix?: string;
  /** What `StudyItem.report` holds (reference `--text-process-cfg`); default 'report'. */
  textMode?: TextMode;
  /**
   * Always give `fullReport` (a dual-head model trains both heads): in 'report' and 'sentence' mode it is
   * the same text as `report`, as the reference feeds one text to both heads there.
   */
  twoTexts?: boolean;
  /** How volumes are read (default RPI orientation, NaN voxels an error). */
  read?: VolumeReadSettings;
  /** Storage of cached scans; 'f16' halves memory and disk but rounds every load the same way (default 'f32'). */
  cacheDType?: CacheDType;
  /** In-memory cache (default a 512 MiB MemoryScanCache); false disables it. */
  memoryCache?: ScanCache | false;
  /** Second-level cache, e.g. DiskScanCache in Node (default none). */
  persistentCache?: ScanCache | null;
  /** Decoding and preprocessing of cache misses (default processScanInThread). */
  processor?: ScanProcessor;
}

export interface StudyItem {
  index: number;
  epoch: number;
  studyId: string;
  /** Series names of the sampled scans, in order (repeats possible). */
  scans: string[];
  /** [S, D, H, W] row-major float32. */
  images: Float32Array;
  shape: [number, number, number, number];
  /** The text of the study: the report, or one sentence in the 'sentence' modes. */
  report: string;
  /** Text mode 'sentence and report' only: the whole report (the dual loss's second text). */
  fullReport?: string;
}

export interface DatasetStats {
  /** Volumes decoded from files (NIfTI/DICOM) and preprocessed. */
  volumeReads: number;
  memoryHits: number;
  persistentHits: number;
}

export class StudyDataset {
  readonly studies: readonly StudyEntry[];
  readonly shape: Shape3;
  readonly numScans: number;
  readonly train: boolean;
  readonly seed: number;
  readonly stats: DatasetStats = { volumeReads: 0, memoryHits: 0, persistentHits: 0 };
  private readonly opts: StudyDatasetOptions;
  private readonly prefix: string;
  private readonly memory: ScanCache | null;
  private readonly persistent: ScanCache | null;
  private readonly dtype: CacheDType;
  private readonly locations = new Map<string, Promise<SeriesLocation>>();
  private readonly inflight = new Map<string, Promise<CachedScan>>();

  constructor(opts: StudyDatasetOptions) {
    const { shape, numScans } = opts;
    if (shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n >= 1)) throw new HlipError('config', `shape must be three positive integers [D, H, W], got ${String(shape)}`);
    if (!Number.isInteger(numScans) || numScans < 1) throw new HlipError('config', `numScans must be a positive integer, got ${numScans}`);
    if (opts.textMode !== undefined && !TEXT_MODES.includes(opts.textMode)) throw new HlipError('config', `textMode must be ${TEXT_MODES.map((m) => `'${m}'`).join(', ')}; got '${String(opts.textMode)}'`);
    this.opts = opts;
    this.studies = opts.manifest.studies;
    this.shape = [...shape];
    this.numScans = numScans;
    this.train = opts.train;
    this.seed = checkSeed(opts.seed ?? 0);
    this.prefix = opts.reportPrefix ?? defaultReportPrefix(opts.pipeline.kind === 'ct' ? 'ct' : 'mri');
    this.memory = opts.memoryCache === false ? null : (opts.memoryCache ?? new MemoryScanCache());
    this.persistent = opts.persistentCache ?? null;
    this.dtype = opts.cacheDType ?? 'f32';
  }

  get length(): number {
    return this.studies.length;
  }

  private study(index: number): StudyEntry {
    const st = this.studies[index];
    if (!Number.isInteger(index) || !st) throw new HlipError('config', `study index ${index} is outside [0, ${this.studies.length})`);
    return st;
  }

  /** Which scans item `index` of `epoch` uses (series names, in order). Cheap: nothing is read. */
  scanPlan(index: number, epoch = 0): string[] {
    const st = this.study(index);
    const rng = this.train ? new DataRng(this.seed, 'scans', epoch, index) : null;
    return sampleScans(st.series.map((s) => s.name), this.numScans, rng, this.opts.evalScans ?? 'exact');
  }

  /** The report text of item `index` of `epoch`. */
  report(index: number, epoch = 0): string {
    const shuffle = this.opts.shuffleReport ?? this.train;
    return reportText(this.study(index).report, this.prefix, shuffle ? new DataRng(this.seed, 'report', epoch, index) : null);
  }

  /** One sentence of item `index` of `epoch`: a random one at train time, the first at evaluation. */
  sentence(index: number, epoch = 0): string {
    const draw = this.opts.shuffleReport ?? this.train;
    return sentenceText(this.study(index).report, this.prefix, draw ? new DataRng(this.seed, 'sentence', epoch, index) : null);
  }

  /** The texts of item `index` of `epoch` in the dataset's text mode. */
  texts(index: number, epoch = 0): { report: string; fullReport?: string } {
    const mode = this.opts.textMode ?? 'report';
    if (mode === 'sentence and report') return { report: this.sentence(index, epoch), fullReport: this.report(index, epoch) };
    const text = mode === 'report' ? this.report(index, epoch) : this.sentence(index, epoch);
    return this.opts.twoTexts ? { report: text, fullReport: text } : { report: text };
  }

  /** Item `index` of `epoch`: sampled scans preprocessed to [S, D, H, W] and the report text. */
  async get(index: number, epoch = 0): Promise<StudyItem> {
    const st = this.study(index);
    const scans = this.scanPlan(index, epoch);
    const texts = this.texts(index, epoch);
    const unique = [...new Set(scans)];
    const loaded = new Map<string, CachedScan>();
    await Promise.all(unique.map(async (s) => loaded.set(s, await this.scan(st.id, s))));
    const per = numelOf(this.shape);
    const images = new Float32Array(scans.length * per);
    scans.forEach((s, k) => {
      const c = loaded.get(s)!;
      if (c.dtype === 'f32') images.set(c.data as Float32Array, k * per);
      else images.set(fromCached(c), k * per);
    });
    return { index, epoch, studyId: st.id, scans, images, shape: [scans.length, ...this.shape], ...texts };
  }

  /** Where a series' volume is (resolved once per dataset). */
  locate(studyId: string, series: string): Promise<SeriesLocation> {
    const k = `${studyId}/${series}`;
    let p = this.locations.get(k);
    if (!p) {
      p = resolveSeries(this.opts.files, studyId, series);
      p.catch(() => this.locations.delete(k)); // a failed lookup is retried next time
      this.locations.set(k, p);
    }
    return p;
  }

  /** Cache key of a scan: the file, its stamp and every option that changes the preprocessed values. */
  keyOf(loc: SeriesLocation): ScanKey {
    return scanKey({ v: 1, root: this.opts.files.name, path: loc.path, stamp: loc.stamp ?? null, read: this.opts.read ?? {}, pipeline: this.opts.pipeline, shape: this.shape, dtype: this.dtype });
  }

  /** One preprocessed scan, from the caches when possible. Concurrent requests share one load. */
  async scan(studyId: string, series: string): Promise<CachedScan> {
    const loc = await this.locate(studyId, series);
    const key = this.keyOf(loc);
    let p = this.inflight.get(key.text);
    if (!p) {
      p = this.load(loc, key).finally(() => this.inflight.delete(key.text));
      this.inflight.set(key.text, p);
    }
    return p;
  }

  private async load(loc: SeriesLocation, key: ScanKey): Promise<CachedScan> {
    const mem = await this.memory?.get(key);
    if (mem) {
      this.stats.memoryHits++;
      return mem;
    }
    const stored = await this.persistent?.get(key);
    if (stored) {
      this.stats.persistentHits++;
      await this.memory?.set(key, stored);
      return stored;
    }
    this.stats.volumeReads++;
    const job: ScanJob = { root: this.opts.files.name, path: loc.path, read: this.opts.read ?? {}, pipeline: this.opts.pipeline, shape: this.shape };
    const values = await (this.opts.processor ?? processScanInThread)(job, this.opts.files);
    const scan = toCached(values, this.shape, this.dtype);
    await this.memory?.set(key, scan);
    await this.persistent?.set(key, scan);
    return scan;
  }
}
