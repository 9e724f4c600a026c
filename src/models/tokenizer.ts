// Text tokenizers for the text towers: BERT WordPiece from a vocab.txt (the slow BertTokenizer's
// rules) and any Hugging Face tokenizer.json through @huggingface/tokenizers. Both give fixed-length
// batches as open_clip's HFTokenizer does (padding 'max_length', truncation at the context length).
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { FormatError, HlipError } from '../errors.js';
import { tokenBatch, type TokenBatch } from './text-transformer.js';

/** HLIP context lengths: CXR-BERT (CT-RATE) 512, BiomedBERT (MRI) 256. */
export const CONTEXT_CXR_BERT = 512;
export const CONTEXT_BIOMEDBERT = 256;

export interface TextTokenizerBase {
  readonly contextLength: number;
  readonly padId: number;
  /** Ids with the special tokens, truncated to the context length, not padded. */
  encode(text: string): number[];
  /** [texts, contextLength] ids, padded with padId. */
  encodeBatch(texts: readonly string[]): TokenBatch;
}

function padBatch(rows: number[][], contextLength: number, padId: number): TokenBatch {
  const ids = new Int32Array(rows.length * contextLength).fill(padId);
  rows.forEach((r, i) => ids.set(r.slice(0, contextLength), i * contextLength));
  return tokenBatch(ids, [rows.length, contextLength]);
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function unescapeHtml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED_ENTITIES[e.toLowerCase()] ?? m;
  });
}

/**
 * open_clip HFTokenizer's `clean='whitespace'`: html unescape (twice), strip, collapse whitespace.
 * ftfy.fix_text (mojibake repair) is not reproduced; the html unescaping covers numeric and the
 * common named entities.
 */
export function cleanWhitespace(text: string): string {
  return unescapeHtml(unescapeHtml(text)).trim().replace(/\s+/g, ' ').trim();
}

// ------------------------------------------------------------------ BERT basic tokenizer

const isWhitespace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || /\p{Zs}/u.test(c);
const isControl = (c: string) => c !== '\t' && c !== '\n' && c !== '\r' && /\p{C}/u.test(c);
function isPunctuation(c: string): boolean {
  const cp = c.codePointAt(0) as number;
  // ASCII non-alphanumerics count as punctuation (BERT treats '$', '^', '`' like '.', ',').
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return /\p{P}/u.test(c);
}
function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

export interface BasicTokenizerOptions {
  lowerCase?: boolean;
  /** Default: follows lowerCase (as BertTokenizer's strip_accents=None). */
  stripAccents?: boolean;
  tokenizeChineseChars?: boolean;
  /** Tokens kept whole (the special tokens). */
  neverSplit?: readonly string[];
}

/** BERT's BasicTokenizer: clean, split CJK, NFC, whitespace split, lowercase/strip accents, split punctuation. */
export function basicTokenize(text: string, opts: BasicTokenizerOptions = {}): string[] {
  const lower = opts.lowerCase ?? true;
  const strip = opts.stripAccents ?? lower;
  const never = new Set(opts.neverSplit ?? []);
  let clean = '';
  for (const c of text) {
    const cp = c.codePointAt(0) as number;
    if (cp === 0 || cp === 0xfffd || isControl(c)) continue;
    if (isWhitespace(c)) clean += ' ';
    else if ((opts.tokenizeChineseChars ?? true) && isCjk(cp)) clean += ` ${c} `;
    else clean += c;
  }
  clean = clean.normalize('NFC');
  const out: string[] = [];
  for (let tok of clean.split(' ').filter((t) => t.length > 0)) {
    if (never.has(tok)) {
      out.push(tok);
      continue;
    }
    if (lower) tok = tok.toLowerCase();
    if (strip) tok = tok.normalize('NFD').replace(/\p{Mn}/gu, '');
    let cur = '';
    for (const c of tok) {
      if (isPunctuation(c)) {
        if (cur) out.push(cur);
        out.push(c);
        cur = '';
      } else cur += c;
    }
    if (cur) out.push(cur);
  }
  return out;
}

export interface WordPieceOptions extends BasicTokenizerOptions {
  contextLength: number;
  unk?: string;
  cls?: string;
  sep?: string;
  pad?: string;
  maxInputCharsPerWord?: number;
  /** Apply open_clip's whitespace cleaning first (default true). */
  clean?: boolean;
}

/**
 * BERT WordPiece tokenizer from a vocab.txt (one token per line, id = line number), with the slow
 * `BertTokenizer` rules: basic tokenizer (lower-casing and accent stripping for uncased vocabularies,
 * punctuation and CJK split), greedy longest-match-first word pieces with '##' continuations, words
 * over 100 characters or with no match → [UNK]; then [CLS] … [SEP], truncated to the context length.
 * Special tokens written in the text are kept whole.
 */
export class WordPieceTokenizer implements TextTokenizerBase {
  readonly vocab: Map<string, number>;
  readonly contextLength: number;
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly unkId: number;
  private readonly opts: WordPieceOptions;
  private readonly specials: string[];

  constructor(vocab: readonly string[] | Map<string, number>, opts: WordPieceOptions) {
    this.vocab = vocab instanceof Map ? vocab : new Map(vocab.map((t, i) => [t, i] as const));
    this.opts = opts;
    this.contextLength = opts.contextLength;
    if (!Number.isInteger(opts.contextLength) || opts.contextLength < 2) throw new HlipError('config', `context length must be an integer ≥ 2, got ${opts.contextLength}`);
    const id = (t: string) => {
      const v = this.vocab.get(t);
      if (v === undefined) throw new FormatError('vocab', `special token '${t}' is not in the vocabulary`);
      return v;
    };
    const [unk, cls, sep, pad] = [opts.unk ?? '[UNK]', opts.cls ?? '[CLS]', opts.sep ?? '[SEP]', opts.pad ?? '[PAD]'];
    this.unkId = id(unk);
    this.clsId = id(cls);
    this.sepId = id(sep);
    this.padId = id(pad);
    this.specials = [unk, cls, sep, pad, ...(this.vocab.has('[MASK]') ? ['[MASK]'] : []), ...(opts.neverSplit ?? [])];
  }

  /** From the text of a vocab.txt (ids are line numbers; a trailing newline is ignored). */
  static fromVocabText(text: string, opts: WordPieceOptions): WordPieceTokenizer {
    const lines = text.split(/\r?\n/);
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    if (!lines.length) throw new FormatError('vocab.txt', 'empty vocabulary');
    return new WordPieceTokenizer(lines, opts);
  }

  /** Word pieces of one basic token (ids). */
  private wordPieces(word: string): number[] {
    const chars = [...word];
    if (chars.length > (this.opts.maxInputCharsPerWord ?? 100)) return [this.unkId];
    const ids: number[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: number | undefined;
      while (start < end) {
        const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        found = this.vocab.get(piece);
        if (found !== undefined) break;
        end--;
      }
      if (found === undefined) return [this.unkId];
      ids.push(found);
      start = end;
    }
    return ids;
  }

  /** Ids of the text without special tokens around it. */
  tokenize(text: string): number[] {
    const t = this.opts.clean === false ? text : cleanWhitespace(text);
    const ids: number[] = [];
    for (const w of splitOnSpecials(t, this.specials)) {
      if (w.special) ids.push(this.vocab.get(w.text) as number);
      else for (const tok of basicTokenize(w.text, { ...this.opts, neverSplit: this.specials })) ids.push(...this.wordPieces(tok));
    }
    return ids;
  }

  encode(text: string): number[] {
    return [this.clsId, ...this.tokenize(text).slice(0, this.contextLength - 2), this.sepId];
  }

  encodeBatch(texts: readonly string[]): TokenBatch {
    return padBatch(texts.map((t) => this.encode(t)), this.contextLength, this.padId);
  }

  /** Tokens of ids (for inspection). */
  idsToTokens(ids: readonly number[]): string[] {
    const inv = new Map([...this.vocab].map(([t, i]) => [i, t] as const));
    return ids.map((i) => inv.get(i) ?? '[UNK]');
  }
}

/** Splits text around occurrences of special tokens (longest first), as the slow tokenizers do. */
function splitOnSpecials(text: string, specials: readonly string[]): { text: string; special: boolean }[] {
  const sorted = [...new Set(specials)].sort((a, b) => b.length - a.length);
  const out: { text: string; special: boolean }[] = [];
  let i = 0;
  let last = 0;
  while (i < text.length) {
    const hit = text[i] === '[' ? sorted.find((s) => text.startsWith(s, i)) : undefined;
    if (hit) {
      if (i > last) out.push({ text: text.slice(last, i), special: false });
      out.push({ text: hit, special: true });
      i += hit.length;
      last = i;
    } else i++;
  }
  if (last < text.length) out.push({ text: text.slice(last), special: false });
  return out;
}

// ------------------------------------------------------------------ tokenizer.json

/**
 * Any Hugging Face `tokenizer.json` (with its tokenizer_config.json) through @huggingface/tokenizers.
 * Truncation keeps the post-processor's special tokens (for BERT: [CLS] first, [SEP] last) and drops
 * text tokens, like `truncation=True, max_length=contextLength`.
 */
export class JsonTokenizer implements TextTokenizerBase {
  readonly hf: HfTokenizer;
  readonly padId: number;
  private readonly prefix: number[];
  private readonly suffix: number[];
  private readonly clean: boolean;

  constructor(tokenizerJson: object, tokenizerConfig: object = {}, readonly contextLength = 512, opts: { clean?: boolean; padId?: number } = {}) {
    this.hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    this.clean = opts.clean ?? true;
    const padding = (tokenizerJson as { padding?: { pad_id?: number } | null }).padding;
    this.padId = opts.padId ?? padding?.pad_id ?? this.hf.token_to_id('[PAD]') ?? this.hf.token_to_id('<pad>') ?? 0;
    // The special tokens the post-processor puts around a single text: find a plain encoding inside the full one.
    const full = this.hf.encode('a', { add_special_tokens: true }).ids;
    const plain = this.hf.encode('a', { add_special_tokens: false }).ids;
    const at = full.findIndex((_, i) => plain.every((p, k) => full[i + k] === p));
    this.prefix = at >= 0 ? full.slice(0, at) : [];
    this.suffix = at >= 0 ? full.slice(at + plain.length) : [];
    if (contextLength <= this.prefix.length + this.suffix.length) throw new HlipError('config', `context length ${contextLength} leaves no room for text`);
  }

  encode(text: string): number[] {
    const t = this.clean ? cleanWhitespace(text) : text;
    const ids = this.hf.encode(t, { add_special_tokens: false }).ids;
    const room = this.contextLength - this.prefix.length - this.suffix.length;
    return [...this.prefix, ...ids.slice(0, room), ...this.suffix];
  }

  encodeBatch(texts: readonly string[]): TokenBatch {
    return padBatch(texts.map((t) => this.encode(t)), this.contextLength, this.padId);
  }
}
