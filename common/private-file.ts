/**
 * Secrets on disk (seeds, `.creds`, JWTs): a file only its owner may read, written beside and renamed into
 * place, so a reader (a sidecar reconnecting, a server reloading) never sees half of it.
 */
import { chmodSync, renameSync, writeFileSync } from 'node:fs';

export function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600); // the umask may have narrowed it further, never widened: make it exactly 0600
  renameSync(tmp, file);
}
