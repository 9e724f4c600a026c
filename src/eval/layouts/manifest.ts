// Our study-manifest layout (src/data/manifest.ts; what `hlip synth` writes): label ids are manifest study
// ids, a study's scans are its series in manifest order at <root>/<study>/<series>.nii.gz|.nii|/ (DICOM).
import type { Manifest } from '../../data/manifest.js';
import { seriesCandidates } from '../../data/manifest.js';
import type { LayoutReader } from './reader.js';
import type { ScanRef } from './types.js';

export function manifestReader(manifest: Manifest): LayoutReader {
  const byId = new Map(manifest.studies.map((s) => [s.id, s]));
  return {
    name: 'manifest',
    async resolve({ tree, labels }, row) {
      const id = labels.ids[row]!;
      const st = byId.get(id) ?? byId.get(labels.keys[row]!);
      if (!st) return { missing: `not a study of the manifest ${manifest.source}` };
      const scans: ScanRef[] = [];
      for (const s of st.series) {
        const cands = seriesCandidates(st.id, s.name);
        let hit: ScanRef | null = null;
        for (const c of cands) {
          if ((await tree.stat(c.path))?.kind === c.kind) {
            hit = { name: s.name, format: c.format, path: c.path };
            break;
          }
        }
        if (!hit) return { missing: `series '${s.name}' has no file (tried ${cands.map((c) => c.path).join(', ')})` };
        scans.push(hit);
      }
      return { cases: [{ id, key: labels.keys[row]!, scans }] };
    },
  };
}
