// StudyFiles over a set of named byte blobs (browser-safe): the Files of a dropped or picked folder
// (key them by webkitRelativePath minus the root folder), or bytes generated in memory.
import { FormatError, HlipError } from '../errors.js';
import { assembleDicomSeries, hasDicomPreamble, pickSeries, readDicomImage, type DicomImage } from '../io/dicom.js';
import { readNifti } from '../io/nifti.js';
import type { Volume } from '../io/volume.js';
import type { FileInfo, StudyFiles, VolumeReadSettings } from './manifest.js';

export type FileData = Blob | Uint8Array;

function normalizePath(p: string): string {
  return p.replace(/\\/g, '/').replace(/^(\.\/)+/, '').replace(/\/+/g, '/').replace(/\/$/, '');
}

function sizeOf(d: FileData): number {
  return d instanceof Uint8Array ? d.byteLength : d.size;
}

/**
 * StudyFiles over `entries` (relative path → data). Folders are implied by the paths; a folder is read as
 * a DICOM series made of every file below it (names starting with '.' skipped).
 */
export function mapStudyFiles(entries: Iterable<readonly [string, FileData]>, name = '<files>'): StudyFiles {
  const files = new Map<string, FileData>();
  const dirs = new Set<string>();
  for (const [p, d] of entries) {
    const path = normalizePath(p);
    files.set(path, d);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return {
    name,
    async stat(p: string): Promise<FileInfo | null> {
      const path = normalizePath(p);
      const f = files.get(path);
      if (f) return { kind: 'file', stamp: String(sizeOf(f)) };
      return dirs.has(path) ? { kind: 'dir' } : null;
    },
    async readVolume(p: string, opts: VolumeReadSettings): Promise<Volume> {
      const path = normalizePath(p);
      const f = files.get(path);
      const label = `${name}/${path}`;
      if (f) return readNifti(f, { ...opts, name: label });
      if (!dirs.has(path)) throw new HlipError('io', 'no such file or folder', { source: label });
      const prefix = path + '/';
      const members = [...files].filter(([k]) => k.startsWith(prefix) && !k.slice(prefix.length).split('/').some((c) => c.startsWith('.')));
      members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      // As the Node folder reader: DICOMDIR and files without the DICM preamble (READMEs, thumbnails) are skipped.
      const images: DicomImage[] = [];
      for (const [k, data] of members) {
        if ((k.split('/').pop() ?? '').toUpperCase().startsWith('DICOMDIR')) continue;
        const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
        if (!hasDicomPreamble(bytes)) continue;
        const im = await readDicomImage(bytes, `${name}/${k}`);
        if (im) images.push(im);
      }
      if (images.length === 0) throw new FormatError(label, 'no DICOM image (file with the DICM preamble and pixel data) in this folder');
      const dopts = { orientation: opts.orientation ?? 'RPI', name: label };
      return assembleDicomSeries(pickSeries(images, dopts, label), dopts);
    },
  };
}
