/** Manifest files on disk: the files a list of files and folders names (for `fnmesh validate` and tests). */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { isManifestFile } from './manifest';

/** Every manifest file under the given files and folders (folders recursively, sorted). */
export function listManifestFiles(paths: string[]): string[] {
  const out: string[] = [];
  const visit = (p: string, explicit: boolean): void => {
    let st;
    try {
      st = statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        if (name.startsWith('.') || name === 'node_modules') continue;
        visit(path.join(p, name), false);
      }
    } else if (explicit || isManifestFile(p)) {
      out.push(path.resolve(p));
    }
  };
  for (const p of paths) visit(p, true);
  return out;
}
