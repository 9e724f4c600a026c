// Rad-ChestCT (Zenodo record 6406114) in its public layout: one `<NoteAcc_DEID>.npz` per volume (array
// "ct", HU, 0.8 mm isotropic), flat or in a folder of its own; NIfTI conversions are accepted too.
import { fileScan, firstFile } from './scans.js';
import type { LayoutReader } from './reader.js';

export function radChestCtReader(): LayoutReader {
  return {
    name: 'rad-chestct',
    async resolve({ tree, labels }, row) {
      const id = labels.ids[row]!;
      const cands = ['npz', 'nii.gz', 'nii'].flatMap((ext) => [`${id}.${ext}`, `${id}/${id}.${ext}`]);
      const hit = await firstFile(tree, cands);
      if (!hit) return { missing: `no volume; tried ${cands.join(', ')}` };
      return { cases: [{ id, key: labels.keys[row]!, scans: [fileScan(hit)] }] };
    },
  };
}
