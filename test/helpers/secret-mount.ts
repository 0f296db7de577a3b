/**
 * A folder updated the way the kubelet updates a mounted Secret (its AtomicWriter; fnmesh cluster has its own
 * writer in cluster/atomic-writer.ts, which test/ may not import): the files are written into
 * a fresh timestamped folder, a `..data_tmp` symlink to it is renamed over `..data` (one atomic swap), each
 * file in the mount is a symlink `name -> ..data/name`, and the previous timestamped folder is removed.
 */
import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface SecretMount {
  dir: string;
  /** The path a container reads `name` at. */
  file(name: string): string;
  /** Replaces the Secret's content in one swap, as a kubelet sync does. */
  write(files: Record<string, string>): void;
  cleanup(): void;
}

export function createSecretMount(prefix = 'fnmesh-secret-'): SecretMount {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  let version = 0;
  const linked = new Set<string>();
  return {
    dir,
    file: (name) => path.join(dir, name),
    write(files) {
      const stamped = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${process.pid}.${version++}`;
      mkdirSync(path.join(dir, stamped), { mode: 0o755 });
      for (const [name, text] of Object.entries(files))
        writeFileSync(path.join(dir, stamped, name), text, { mode: 0o644 });
      let previous: string | undefined;
      try {
        previous = readlinkSync(path.join(dir, '..data'));
      } catch {
        previous = undefined;
      }
      symlinkSync(stamped, path.join(dir, '..data_tmp'));
      renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      for (const name of Object.keys(files)) {
        if (linked.has(name)) continue;
        symlinkSync(path.join('..data', name), path.join(dir, name));
        linked.add(name);
      }
      if (previous) rmSync(path.join(dir, previous), { recursive: true, force: true });
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
