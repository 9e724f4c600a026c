// MR-RATE (test split): <root>/<study_uid>/ holds the study's scans, one per sub-folder as the reference's
// <uid>/<scan>/img.pt (here a NIfTI file or a DICOM series in each), or NIfTI files directly.
// (The reference skips label rows without a study folder: use skipMissing for the same.)
import { findScans, firstDir } from './scans.js';
import type { LayoutReader } from './reader.js';

export function mrRateReader(): LayoutReader {
  return {
    name: 'mr-rate',
    async resolve({ tree, labels }, row) {
      const id = labels.ids[row]!;
      const dir = await firstDir(tree, [id, `test/${id}`]);
      if (!dir) return { missing: `no study folder ${id}/` };
      const scans = await findScans(tree, dir);
      if (!scans.length) return { missing: `no NIfTI file or DICOM series in ${dir}` };
      return { cases: [{ id, key: labels.keys[row]!, scans }] };
    },
  };
}
