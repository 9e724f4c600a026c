// Minimal RFC 4180 CSV reader for label and score files (quoted fields, "" escapes, CRLF, BOM).
import { FormatError } from '../errors.js';

export interface CsvTable {
  header: string[];
  /** Data rows, each as long as the header. */
  rows: string[][];
  /** 1-based line number of each data row in the file (for error messages). */
  lines: number[];
}

/** Parse CSV text; every row must have as many fields as the header. Blank lines are skipped. */
export function parseCsv(text: string, source: string): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let startLine = 1;
  let any = false; // the current record has content
  const endRecord = () => {
    if (any || fields.length > 0) records.push({ fields: [...fields, field], line: startLine });
    fields = [];
    field = '';
    any = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"') {
      if (field !== '') throw new FormatError(source, `line ${line}: quote inside an unquoted field`);
      quoted = true;
      any = true;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      any = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      startLine = line;
    } else {
      field += ch;
      any = true;
    }
  }
  if (quoted) throw new FormatError(source, `line ${startLine}: unterminated quoted field`);
  endRecord();
  if (records.length === 0) throw new FormatError(source, 'empty CSV file (no header)');
  const header = records[0]!.fields.map((h) => h.trim());
  const rows: string[][] = [];
  const lines: number[] = [];
  for (const r of records.slice(1)) {
    if (r.fields.length === 1 && r.fields[0]!.trim() === '') continue;
    if (r.fields.length !== header.length) {
      throw new FormatError(source, `line ${r.line}: ${r.fields.length} fields, the header has ${header.length}`);
    }
    rows.push(r.fields);
    lines.push(r.line);
  }
  return { header, rows, lines };
}
