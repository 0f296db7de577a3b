/**
 * The checkout's root directory (the nearest ancestor holding the fnmesh package.json), wherever the code
 * runs from: the sources under Jest, or their compiled copies under dist/.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

export function repoRoot(from = __dirname): string {
  if (cached && from === __dirname) return cached;
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'fnmesh') {
          if (from === __dirname) cached = dir;
          return dir;
        }
      } catch {
        // not JSON: keep looking
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`no fnmesh checkout above ${from}: run fnmesh from its repository`);
  }
}
