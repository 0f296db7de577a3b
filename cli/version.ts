import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The fnmesh version from package.json (cli/ in the sources, dist/cli/ when built). */
export function fnmeshVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(path.resolve(__dirname, rel), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'fnmesh' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0-unknown';
}
