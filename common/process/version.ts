import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './repo-root';

/** The fnmesh version from the checkout's package.json (the sources under Jest or their copies in dist/). */
export function fnmeshVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version?: string };
    if (pkg.version) return pkg.version;
  } catch {
    // no checkout above this file
  }
  return '0.0.0-unknown';
}
