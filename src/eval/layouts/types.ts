// What a benchmark layout reader produces: the label file's studies mapped to scan files under a data root.
import { FormatError } from '../../errors.js';

export type ScanFormat = 'nifti' | 'npz' | 'dicom';

/** One scan (volume) of a study: a NIfTI or .npz file, or a DICOM series (a folder, or an explicit file list). */
export interface ScanRef {
  /** Short name (file or folder name), for messages and embedding metadata. */
  name: string;
  format: ScanFormat;
  /** Path relative to the data root: the file, or the DICOM series folder. */
  path: string;
  /** DICOM series given as files (e.g. RSNA's flat slice folder); default every file below `path`. */
  files?: string[];
}

/** One evaluated case. */
export interface BenchStudy {
  /** Case id as the label file gives it after `caseId` (RSNA: the study, shared by its series cases). */
  id: string;
  /** Score-file key (first CSV column); unique per case. Matches the label row through caseIdCandidates. */
  key: string;
  /** Label-table row. */
  row: number;
  /** Scans in file-name order. */
  scans: ScanRef[];
}

export interface MissingStudy {
  id: string;
  /** What was looked for. */
  reason: string;
}

export interface LayoutResult {
  /** Layout that matched ('ct-rate', …, 'manifest'). */
  layout: string;
  root: string;
  studies: BenchStudy[];
  /** Label rows without files (only when skipping was asked for; otherwise they are an error). */
  missing: MissingStudy[];
}

/** Label-file studies without files under the data root; `missing` lists every one of them. */
export class MissingStudiesError extends FormatError {
  readonly missing: readonly MissingStudy[];
  constructor(root: string, missing: readonly MissingStudy[], total: number) {
    const shown = missing.slice(0, 5).map((m) => `'${m.id}' (${m.reason})`).join('; ');
    super(root, `${missing.length} of ${total} labelled studies have no files here: ${shown}${missing.length > 5 ? '; …' : ''} (skipMissing, --skip-missing on the command line, evaluates the rest)`);
    this.name = 'MissingStudiesError';
    this.missing = missing;
  }
}
