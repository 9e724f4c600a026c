// Node DataTree (src/eval/layouts/tree.ts) over a folder on disk.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HlipError } from '../errors.js';
import type { DataTree, TreeEntry, TreeStat } from '../eval/layouts/tree.js';

const missing = (e: unknown) => ['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '');

export function nodeDataTree(root: string): DataTree {
  const base = resolve(root);
  const abs = (p: string) => (p === '' ? base : join(base, ...p.split('/')));
  return {
    name: base,
    async stat(p): Promise<TreeStat | null> {
      try {
        const s = await stat(abs(p)); // follows links, as the reference's os.path calls do
        if (s.isDirectory()) return { kind: 'dir', stamp: `${s.mtimeMs}` };
        if (s.isFile()) return { kind: 'file', stamp: `${s.size}:${s.mtimeMs}` };
        return null;
      } catch (e) {
        if (missing(e)) return null;
        throw new HlipError('io', `cannot stat: ${(e as Error).message}`, { source: abs(p), cause: e });
      }
    },
    async list(p): Promise<TreeEntry[] | null> {
      let entries;
      try {
        entries = await readdir(abs(p), { withFileTypes: true });
      } catch (e) {
        if (missing(e)) return null;
        throw new HlipError('io', `cannot list: ${(e as Error).message}`, { source: abs(p), cause: e });
      }
      const out: TreeEntry[] = [];
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        let kind: TreeEntry['kind'] | null = e.isDirectory() ? 'dir' : e.isFile() ? 'file' : null;
        if (e.isSymbolicLink()) {
          const s = await stat(join(abs(p), e.name)).catch(() => null);
          kind = s?.isDirectory() ? 'dir' : s?.isFile() ? 'file' : null;
        }
        if (kind) out.push({ name: e.name, kind });
      }
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async readBytes(p) {
      try {
        return new Uint8Array(await readFile(abs(p)));
      } catch (e) {
        throw new HlipError('io', `cannot read: ${(e as Error).message}`, { source: abs(p), cause: e });
      }
    },
  };
}
