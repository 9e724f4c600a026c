// CT-RATE (validation) in its public layout (Hugging Face ibrahimhamamci/CT-RATE):
//   <root>/[dataset/]valid_fixed|valid/<split_n>/<split_n_a>/<split_n_a_k>.nii.gz
// (root may also be the valid_fixed folder itself, or a flat folder of <VolumeName>). The label file's
// VolumeName is `valid_1_a_1.nii.gz`: folder names are name.rsplit('_', 2)[0] and name.rsplit('_', 1)[0],
// as the reference's process.py / zeroshot_ctrate.py build them.
import { parseCsv } from '../csv.js';
import { FormatError } from '../../errors.js';
import type { Vec3 } from '../../io/volume.js';
import { fileScan, firstFile } from './scans.js';
import type { LayoutReader } from './reader.js';

const BASES = ['', 'valid_fixed', 'valid', 'dataset/valid_fixed', 'dataset/valid'];

/** Folder parts of a CT-RATE volume name: ('valid_1', 'valid_1_a'). */
export function ctRateFolders(name: string): [string, string] {
  const cut = (s: string) => s.slice(0, Math.max(0, s.lastIndexOf('_')));
  const b = cut(name);
  return [cut(b), b];
}

export function ctRateReader(): LayoutReader {
  let base: string | null = null; // the base that held the previous study: tried first
  return {
    name: 'ct-rate',
    async resolve({ tree, labels }, row) {
      const name = labels.ids[row]!;
      const [a, b] = ctRateFolders(name);
      const bases = base === null ? BASES : [base, ...BASES.filter((x) => x !== base)];
      const tried: string[] = [];
      for (const bs of bases) {
        const pre = bs ? `${bs}/` : '';
        const cands = a ? [`${pre}${a}/${b}/${name}.nii.gz`, `${pre}${a}/${b}/${name}.nii`, `${pre}${name}.nii.gz`, `${pre}${name}.nii`] : [`${pre}${name}.nii.gz`, `${pre}${name}.nii`];
        tried.push(cands[0]!);
        const hit = await firstFile(tree, cands);
        if (hit) {
          base = bs;
          return { cases: [{ id: name, key: labels.keys[row]!, scans: [fileScan(hit)] }] };
        }
      }
      return { missing: `no NIfTI file; tried ${tried.join(', ')} (and .nii, flat)` };
    },
  };
}

/**
 * The reference's process.py rescales with the metadata CSV (`metadata/validation_metadata.csv`:
 * VolumeName, RescaleSlope, RescaleIntercept, XYSpacing "[x, y]", ZSpacing) rather than the NIfTI header:
 * HU = value · slope + intercept, spacing (x, y, z). Only needed for the original (non-"fixed") volumes.
 */
export interface CtRateVolumeMeta {
  slope: number;
  intercept: number;
  /** Voxel spacing along i, j, k (x, y, z) in mm. */
  spacing: Vec3;
}

export function parseCtRateMetadata(text: string, source: string): Map<string, CtRateVolumeMeta> {
  const csv = parseCsv(text, source);
  const col = (n: string) => {
    const i = csv.header.indexOf(n);
    if (i < 0) throw new FormatError(source, `no '${n}' column (header: ${csv.header.join(', ')}); is this CT-RATE's metadata CSV?`);
    return i;
  };
  const [cn, cs, ci, cxy, cz] = ['VolumeName', 'RescaleSlope', 'RescaleIntercept', 'XYSpacing', 'ZSpacing'].map(col) as [number, number, number, number, number];
  const out = new Map<string, CtRateVolumeMeta>();
  csv.rows.forEach((r, k) => {
    const xy = (r[cxy] ?? '').replace(/[[\]()]/g, '').split(/[,\s]+/).filter((s) => s !== '').map(Number);
    const nums = [Number(r[cs]), Number(r[ci]), Number(r[cz]), ...xy];
    if (xy.length !== 2 || !nums.every(Number.isFinite)) throw new FormatError(source, `line ${csv.lines[k]}: slope, intercept, XYSpacing [x, y] and ZSpacing must be numbers`);
    const name = r[cn]!.trim().replace(/\.nii(\.gz)?$/i, '');
    out.set(name, { slope: Number(r[cs]), intercept: Number(r[ci]), spacing: [xy[0]!, xy[1]!, Number(r[cz])] });
  });
  return out;
}
