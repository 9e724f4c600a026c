// Batches of a StudyDataset over epochs (browser-safe), as open_clip's train loader: a seeded shuffle per
// epoch, fixed batch size, the last partial batch dropped at train time (drop_last=True), reports
// tokenized to fixed-length ids. The next `prefetch` batches load while the caller computes, so file
// reads, gunzip (native, off the JS thread) and preprocessing of the first epoch overlap GPU work; later
// epochs come from the scan cache.
//
// Everything random derives from (seed, epoch, index) counters, so the whole loader state is
// {epoch, position}: `state()` after step k and `restore()` in a new process give the same batches as an
// uninterrupted run, and prefetching never changes what a batch holds.
import { HlipError, ShapeError } from '../errors.js';
import type { TokenBatch } from '../models/text-transformer.js';
import type { TextTokenizerBase } from '../models/tokenizer.js';
import type { StudyDataset } from './dataset.js';
import { checkSeed, DataRng, permutation } from './random.js';

export interface StudyLoaderOptions {
  batchSize: number;
  tokenizer: TextTokenizerBase;
  /** Shuffle the study order every epoch (default: dataset.train). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default: dataset.train, as open_clip). */
  dropLast?: boolean;
  /** Seed of the epoch order (default: dataset.seed). */
  seed?: number;
  /** Batches loaded ahead of the one being consumed (default 2; 0 loads on demand). */
  prefetch?: number;
}

export interface StudyBatch {
  epoch: number;
  /** Batch index within the epoch. */
  position: number;
  /** Dataset indices of the batch's studies. */
  indices: number[];
  studyIds: string[];
  reports: string[];
  /** Series names per study. */
  scans: string[][];
  /** [B, S, D, H, W] row-major. */
  images: Float32Array;
  shape: [number, number, number, number, number];
  /** [B, contextLength] token ids, padded with the tokenizer's padId. */
  ids: Int32Array;
  /** The same ids as a TokenBatch for the text towers. */
  tokens: TokenBatch;
  /** Tokens per row before padding (with the special tokens, at most contextLength). */
  lengths: Int32Array;
  /** Text mode 'sentence and report': the whole reports, tokenised like `ids` ([B, contextLength]). */
  reportIds?: Int32Array;
}

/** Everything needed to continue where a run stopped (JSON-serialisable). */
export interface LoaderState {
  version: 1;
  seed: number;
  epoch: number;
  /** Next batch to be consumed within `epoch`. */
  position: number;
  batchSize: number;
  /** Studies in the dataset (guards against resuming on other data). */
  size: number;
  shuffle: boolean;
  dropLast: boolean;
}

interface Pending {
  epoch: number;
  position: number;
  promise: Promise<StudyBatch>;
}

export class StudyLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly prefetch: number;
  readonly batchesPerEpoch: number;
  private readonly tokenizer: TextTokenizerBase;
  private cursor = { epoch: 0, position: 0 };
  private tail = { epoch: 0, position: 0 };
  private queue: Pending[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private readonly orders = new Map<number, Int32Array>();

  constructor(readonly dataset: StudyDataset, opts: StudyLoaderOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new HlipError('config', `batchSize must be a positive integer, got ${batchSize}`);
    this.batchSize = batchSize;
    this.tokenizer = opts.tokenizer;
    this.shuffle = opts.shuffle ?? dataset.train;
    this.dropLast = opts.dropLast ?? dataset.train;
    this.seed = checkSeed(opts.seed ?? dataset.seed);
    this.prefetch = opts.prefetch ?? 2;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new HlipError('config', `prefetch must be a non-negative integer, got ${this.prefetch}`);
    const n = dataset.length;
    this.batchesPerEpoch = this.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
    if (this.batchesPerEpoch === 0) throw new HlipError('config', `${n} studies make no full batch of ${batchSize} (dropLast)`);
  }

  get epoch(): number {
    return this.cursor.epoch;
  }

  /** Next batch to be consumed within the current epoch. */
  get position(): number {
    return this.cursor.position;
  }

  /** Study order of an epoch (a seeded permutation, or 0..n−1 without shuffling). */
  order(epoch: number): Int32Array {
    let o = this.orders.get(epoch);
    if (!o) {
      const n = this.dataset.length;
      o = this.shuffle ? permutation(n, new DataRng(this.seed, 'order', epoch, 0)) : Int32Array.from({ length: n }, (_, i) => i);
      if (this.orders.size >= 4) this.orders.delete(this.orders.keys().next().value!);
      this.orders.set(epoch, o);
    }
    return o;
  }

  state(): LoaderState {
    return { version: 1, seed: this.seed, epoch: this.cursor.epoch, position: this.cursor.position, batchSize: this.batchSize, size: this.dataset.length, shuffle: this.shuffle, dropLast: this.dropLast };
  }

  /** Continue from a saved state; prefetched batches are dropped. The configuration must match. */
  restore(s: LoaderState): void {
    const want = this.state();
    if (s.version !== 1) throw new HlipError('config', `loader state version ${String(s.version)} is not supported`);
    for (const k of ['seed', 'batchSize', 'size', 'shuffle', 'dropLast'] as const) {
      if (s[k] !== want[k]) throw new HlipError('config', `loader state has ${k} = ${String(s[k])} but this loader has ${String(want[k])}`);
    }
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.position) || s.position < 0 || s.position > this.batchesPerEpoch) {
      throw new HlipError('config', `loader state epoch ${s.epoch}, position ${s.position} is out of range (${this.batchesPerEpoch} batches per epoch)`);
    }
    this.close();
    this.cursor = s.position === this.batchesPerEpoch ? { epoch: s.epoch + 1, position: 0 } : { epoch: s.epoch, position: s.position };
    this.tail = { ...this.cursor };
  }

  /** Drop prefetched batches (loads already running finish in the background and are discarded). */
  close(): void {
    this.queue = [];
    this.tail = { ...this.cursor };
  }

  /** The next batch, moving on to the next epoch after the last one. */
  next(): Promise<StudyBatch> {
    this.fill(1);
    const head = this.queue.shift()!;
    this.cursor = this.after(this.cursor);
    this.fill(this.prefetch);
    return head.promise;
  }

  /** The remaining batches of the current epoch. */
  async *epochBatches(): AsyncGenerator<StudyBatch, void, undefined> {
    const e = this.cursor.epoch;
    while (this.cursor.epoch === e) yield await this.next();
  }

  private after(p: { epoch: number; position: number }): { epoch: number; position: number } {
    return p.position + 1 >= this.batchesPerEpoch ? { epoch: p.epoch + 1, position: 0 } : { epoch: p.epoch, position: p.position + 1 };
  }

  /** Schedule loads until `ahead` batches are queued; loads run one batch after another. */
  private fill(ahead: number): void {
    while (this.queue.length < ahead) {
      const { epoch, position } = this.tail;
      const promise = this.chain.then(() => this.loadBatch(epoch, position));
      promise.catch(() => undefined); // a failure surfaces when the batch is consumed, not as an unhandled rejection
      this.chain = promise.catch(() => undefined);
      this.queue.push({ epoch, position, promise });
      this.tail = this.after(this.tail);
    }
  }

  /** Batch `position` of `epoch`, independent of anything loaded before. */
  async loadBatch(epoch: number, position: number): Promise<StudyBatch> {
    const n = this.dataset.length;
    const order = this.order(epoch);
    const start = position * this.batchSize;
    const indices = Array.from(order.subarray(start, Math.min(start + this.batchSize, n)));
    const plans = indices.map((i) => this.dataset.scanPlan(i, epoch));
    const s = plans[0]!.length;
    plans.forEach((p, b) => {
      if (p.length !== s) throw new ShapeError(`batch ${position} of epoch ${epoch}: study '${this.dataset.studies[indices[b]!]!.id}' has ${p.length} scans, '${this.dataset.studies[indices[0]!]!.id}' ${s} (evalScans 'reference' needs batch size 1)`);
    });
    const [d, h, w] = this.dataset.shape;
    const B = indices.length;
    const per = s * d * h * w;
    const images = new Float32Array(B * per);
    const items = await Promise.all(indices.map((i) => this.dataset.get(i, epoch)));
    items.forEach((it, b) => images.set(it.images, b * per));
    const T = this.tokenizer.contextLength;
    const lengths = new Int32Array(B);
    const tokenize = (texts: string[], lens: Int32Array | null): Int32Array => {
      const out = new Int32Array(B * T).fill(this.tokenizer.padId);
      texts.forEach((t, b) => {
        const row = this.tokenizer.encode(t).slice(0, T);
        out.set(row, b * T);
        if (lens) lens[b] = row.length;
      });
      return out;
    };
    const ids = tokenize(items.map((it) => it.report), lengths);
    const full = items.map((it) => it.fullReport);
    const reportIds = full.every((r): r is string => r !== undefined) ? tokenize(full, null) : undefined;
    return {
      epoch, position, indices,
      studyIds: items.map((it) => it.studyId),
      reports: items.map((it) => it.report),
      scans: items.map((it) => it.scans),
      images, shape: [B, s, d, h, w],
      ids, tokens: { ids, shape: [B, T] }, lengths,
      ...(reportIds ? { reportIds } : {}),
    };
  }
}
