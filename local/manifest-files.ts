/**
 * Which file each service came from: the manifest source emits services only, while `spec.local.cwd` is
 * relative to the manifest's folder. A source may say so itself (annotation `fnmesh.io/source-file`);
 * otherwise the files are scanned here. A file that does not parse keeps its previous entries.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { isManifestFile, parseManifests, serviceKey, type FunctionService } from '../common/manifest';

export const SOURCE_FILE_ANNOTATION = 'fnmesh.io/source-file';

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

export class ManifestFileIndex {
  private readonly byKey = new Map<string, string>();

  constructor(private readonly paths: string[]) {}

  async refresh(): Promise<void> {
    for (const file of listManifestFiles(this.paths)) {
      try {
        for (const fs of parseManifests(await readFile(file, 'utf8'), file)) this.byKey.set(serviceKey(fs), file);
      } catch {
        // a broken file keeps its previous entries (the source keeps its last good version too)
      }
    }
  }

  fileOf(fs: FunctionService): string | undefined {
    const annotated = fs.metadata.annotations?.[SOURCE_FILE_ANNOTATION];
    if (annotated) return path.resolve(annotated);
    return this.byKey.get(serviceKey(fs));
  }
}
