/**
 * Reading a `.creds` file at start (and again on every reconnect): each failure names the file, the setting
 * that points at it, and the fix.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors';
import { parseCreds, type ParsedCreds } from './creds-format';

/** `setting` is the variable (or flag) the path came from, e.g. FNMESH_NATS_CREDS. */
export function readCredsFile(file: string, setting: string): ParsedCreds {
  const fix = `point ${setting} at the .creds file of this part's NATS user (the one fnmesh's operator mints, or one from \`nsc generate creds\`)`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable by this process (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory, not a file'
            : `cannot be read (${(err as Error).message})`;
    throw new ConfigError(`the NATS credentials file ${file} (${setting}) ${why}: ${fix}`);
  }
  return parseCreds(text, `the NATS credentials file ${file} (${setting})`, fix);
}
