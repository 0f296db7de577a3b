/**
 * Writes a volume's files the way the kubelet's AtomicWriter does, so that a reader never sees a half-written
 * file nor a mix of two versions: each version goes into a fresh hidden folder (`..2026_12_03_12_00_00.123456`),
 * the symlink `..data` is swapped to it with one rename, and each top-level entry (`key`) is a symlink
 * `key -> ..data/key`. The earlier version's folder is removed after the swap.
 */
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { PlannedFile } from './volume-plan';

export const DATA_DIR_LINK = '..data';
const DATA_TMP_LINK = '..data_tmp';

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** True when the version `..data` points at holds exactly `files` (contents and modes). */
function current(dir: string, files: readonly PlannedFile[]): boolean {
  const data = path.join(dir, DATA_DIR_LINK);
  if (!exists(data)) return false;
  const listed: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(data, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else listed.push(r);
    }
  };
  walk('');
  if (listed.length !== files.length) return false;
  for (const f of files) {
    const p = path.join(data, f.path);
    try {
      if ((statSync(p).mode & 0o7777) !== f.mode) return false;
      if (!readFileSync(p).equals(f.content)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function stamp(): string {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.`;
}

/** Makes `dir` hold `files`; returns false (and writes nothing) when it already does. */
export function writeVolumeFiles(dir: string, files: readonly PlannedFile[]): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (current(dir, files)) return false;
  const dataLink = path.join(dir, DATA_DIR_LINK);
  const previous = exists(dataLink) ? readlinkSync(dataLink) : undefined;
  const previousTop = new Set(
    readdirSync(dir).filter((n) => !n.startsWith('..') && lstatSync(path.join(dir, n)).isSymbolicLink()),
  );

  const version = mkdtempSync(path.join(dir, stamp()));
  chmodSync(version, 0o755);
  for (const f of files) {
    const target = path.join(version, f.path);
    mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
    writeFileSync(target, f.content);
    chmodSync(target, f.mode);
  }
  const tmp = path.join(dir, DATA_TMP_LINK);
  rmSync(tmp, { force: true });
  symlinkSync(path.basename(version), tmp);
  renameSync(tmp, dataLink);

  const top = new Set(files.map((f) => f.path.split('/')[0]!));
  for (const name of top) {
    const link = path.join(dir, name);
    if (!exists(link)) symlinkSync(path.join(DATA_DIR_LINK, name), link);
  }
  for (const name of previousTop) if (!top.has(name)) rmSync(path.join(dir, name), { force: true });
  if (previous && previous !== path.basename(version))
    rmSync(path.join(dir, previous), { recursive: true, force: true });
  return true;
}
