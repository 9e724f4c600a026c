// RSNA intracranial hemorrhage. Every CT series of a study is one case with the study's labels (the
// reference: each sub-folder of <root>/RSNA_<study>/ is a case keyed 'RSNA_<study>/<series>'). Accepted:
//   <root>/RSNA_<study>/<series>/…  or  <root>/<study>/<series>/…   (one case per series folder)
//   <root>/<study>/*.dcm                                            (one case: the study's one series)
//   the Kaggle release's flat slice folder (<root>[/stage_2_train]/ID_<sop>.dcm): slices are grouped by
//   their StudyInstanceUID (= the label id, 'ID_…') and SeriesInstanceUID, reading every header once.
import { FormatError } from '../../errors.js';
import { hasDicomPreamble, readDicomImage } from '../../io/dicom.js';
import { findScans, firstDir } from './scans.js';
import { joinPath, type DataTree } from './tree.js';
import type { LayoutReader, Resolved } from './reader.js';
import type { ScanRef } from './types.js';

/** study → series → slice files, from the flat release. */
export type RsnaIndex = Record<string, Record<string, string[]>>;

export interface RsnaOptions {
  /** Where a built flat-folder index is kept between runs (indexing reads every slice once). */
  indexStore?: { load(): Promise<RsnaIndex | null>; save(index: RsnaIndex): Promise<void> };
  onIndexProgress?: (done: number, total: number) => void;
}

const FLAT_DIRS = ['', 'stage_2_train', 'stage_2_train_images', 'stage_1_train_images', 'rsna-intracranial-hemorrhage-detection/stage_2_train'];

/** Indexes the DICOM slices lying directly in the flat folders of the release (none: empty index). */
export async function buildRsnaIndex(tree: DataTree, onProgress?: (done: number, total: number) => void): Promise<RsnaIndex> {
  const files: string[] = [];
  for (const d of FLAT_DIRS) {
    for (const e of (await tree.list(d)) ?? []) if (e.kind === 'file' && /\.dcm$/i.test(e.name)) files.push(joinPath(d, e.name));
  }
  const index: RsnaIndex = {};
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const bytes = await tree.readBytes(f);
    if (!hasDicomPreamble(bytes)) continue;
    const im = await readDicomImage(bytes, `${tree.name}/${f}`);
    if (!im) continue;
    if (!im.studyInstanceUID) throw new FormatError(`${tree.name}/${f}`, 'slice without StudyInstanceUID: cannot tell which RSNA study it belongs to');
    ((index[im.studyInstanceUID] ??= {})[im.seriesInstanceUID] ??= []).push(f);
    if (onProgress && (i % 1000 === 999 || i === files.length - 1)) onProgress(i + 1, files.length);
  }
  return index;
}

export function rsnaReader(opts: RsnaOptions = {}): LayoutReader {
  let flat: Promise<RsnaIndex> | null = null;
  const index = (tree: DataTree) =>
    (flat ??= (async () => {
      const stored = await opts.indexStore?.load();
      if (stored) return stored;
      const built = await buildRsnaIndex(tree, opts.onIndexProgress);
      if (Object.keys(built).length) await opts.indexStore?.save(built);
      return built;
    })());
  return {
    name: 'rsna',
    async resolve({ tree, labels }, row): Promise<Resolved> {
      const id = labels.ids[row]!;
      const bare = id.startsWith('RSNA_') ? id.slice(5) : id;
      const dir = await firstDir(tree, [`RSNA_${bare}`, bare]);
      if (dir) {
        const entries = (await tree.list(dir)) ?? [];
        const subs = entries.filter((e) => e.kind === 'dir');
        const cases: { id: string; key: string; scans: ScanRef[] }[] = [];
        for (const s of subs) {
          const scans = await findScans(tree, joinPath(dir, s.name));
          if (scans.length) cases.push({ id: bare, key: `RSNA_${bare}/${s.name}`, scans });
        }
        // Slices (or NIfTI files) directly in the study folder: one case.
        if (!cases.length) {
          const scans = await findScans(tree, dir, { deep: false });
          if (scans.length) cases.push({ id: bare, key: `RSNA_${bare}`, scans });
        }
        if (!cases.length) return { missing: `no DICOM series or NIfTI file in ${dir}/` };
        return { cases };
      }
      const series = (await index(tree))[bare];
      if (!series) return { missing: `no folder RSNA_${bare}/ or ${bare}/, and no slice of this study in a flat slice folder` };
      const uids = Object.keys(series).sort();
      return {
        cases: uids.map((u) => {
          const files = [...series[u]!].sort();
          const folder = files[0]!.split('/').slice(0, -1).join('/');
          return { id: bare, key: `RSNA_${bare}/${u}`, scans: [{ name: u, format: 'dicom' as const, path: folder, files }] };
        }),
      };
    },
  };
}
