// CQ500 (qure.ai): label id `CQ500CT001`; the public download unpacks to `CQ500CT1 CQ500CT1/Unknown
// Study/<series>/*.dcm`; the reference's layout is <root>/<study>/<scan>. A study's scans are all its DICOM
// series folders (and NIfTI files), found recursively.
import { findScans, firstDir } from './scans.js';
import type { LayoutReader } from './reader.js';

export function cq500Candidates(id: string): string[] {
  const m = /^CQ500[-_ ]?CT[-_ ]?0*(\d+)$/i.exec(id);
  if (!m) return [id];
  const n = m[1]!;
  return [...new Set([id, `CQ500CT${n} CQ500CT${n}`, `CQ500CT${n}`, `CQ500-CT-${n}`])];
}

export function cq500Reader(): LayoutReader {
  return {
    name: 'cq500',
    async resolve({ tree, labels }, row) {
      const id = labels.ids[row]!;
      const cands = cq500Candidates(id);
      const dir = await firstDir(tree, cands);
      if (!dir) return { missing: `no study folder; tried ${cands.join(', ')}` };
      const scans = await findScans(tree, dir);
      if (!scans.length) return { missing: `no DICOM series or NIfTI file in ${dir}` };
      return { cases: [{ id, key: labels.keys[row]!, scans }] };
    },
  };
}
