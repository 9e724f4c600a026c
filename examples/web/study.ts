// Worker side: the picked files of one study → its scans as volumes. NIfTI files are one scan each; DICOM
// files (any folder layout) are grouped into series, one scan per series. Scans come in path order (a
// series sorts by its folder), as `hlip infer` orders a study folder; the page can reorder them. Other
// files (READMEs, DICOMDIR, thumbnails) are skipped.
import { FormatError } from '../../src/errors.js';
import { assembleDicomSeries, groupDicomSeries, hasDicomPreamble, readDicomImage, type DicomImage } from '../../src/io/dicom.js';
import { readNifti, writeNifti } from '../../src/io/nifti.js';
import type { Volume } from '../../src/io/volume.js';
import type { ScanSummary, StudyFile, ViewVolume } from './protocol.js';

const isNifti = (p: string) => /\.nii(\.gz)?$/i.test(p);
const hidden = (p: string) => p.split('/').some((c) => c.startsWith('.'));

const dirOf = (p: string) => p.slice(0, Math.max(0, p.lastIndexOf('/')));

export async function readStudy(files: readonly StudyFile[], check: () => void): Promise<Volume[]> {
  const scans: { key: string; volume: Volume }[] = [];
  for (const f of files.filter((f) => isNifti(f.path) && !hidden(f.path))) {
    check();
    scans.push({ key: f.path, volume: await readNifti(f.file, { name: f.path }) });
  }
  const images: DicomImage[] = [];
  for (const f of files.filter((f) => !isNifti(f.path) && !hidden(f.path))) {
    check();
    if ((f.path.split('/').pop() ?? '').toUpperCase().startsWith('DICOMDIR')) continue;
    const bytes = new Uint8Array(await f.file.arrayBuffer());
    if (!hasDicomPreamble(bytes)) continue;
    const im = await readDicomImage(bytes, f.path);
    if (im) images.push(im);
  }
  for (const s of groupDicomSeries(images).values()) {
    check();
    const first = s.reduce((a, b) => (b.source < a.source ? b : a));
    const key = s.every((im) => dirOf(im.source) === dirOf(first.source)) ? dirOf(first.source) : first.source;
    scans.push({ key, volume: assembleDicomSeries(s, { name: first.seriesDescription || key || `series ${first.seriesInstanceUID}` }) });
  }
  if (!scans.length) throw new FormatError(files[0]?.path.split('/')[0] ?? '<study>', `none of the ${files.length} file(s) is a NIfTI volume or a DICOM image`);
  return scans.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((s) => s.volume);
}

export function scanSummary(v: Volume): ScanSummary {
  return { name: v.source, dims: [...v.dims], spacing: [...v.spacing], orientation: v.orientation };
}

/** A volume as uncompressed NIfTI bytes for the viewer. */
export async function viewVolume(v: Volume, name = v.source): Promise<ViewVolume> {
  return { name, nifti: await writeNifti(v) };
}
