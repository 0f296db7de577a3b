/**
 * Reads FNMESH_SIDECAR_NATS_TLS_CA_FILE (the shell around sidecar-nats-ca.ts): at start, so that a missing or
 * non-PEM file stops the operator naming the setting, and again at every reconcile. Why re-read rather than
 * watch: a reconcile is level-based and needs the current CA anyway, the file is small and is only read again
 * when its stat changes (a kubelet Secret update swaps the `..data` symlink: a new inode), and no watcher can
 * miss an event or leak. A changed CA reaches each FunctionService at its next reconcile, at the latest after
 * FNMESH_RESYNC_MS (the kubelet itself takes up to a minute or so to update the operator's mounted Secret).
 * A file that turns bad while running fails those reconciles (retried with back-off) and leaves the
 * Deployments and CA Secrets as they are.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, errorMessage } from '../common/errors';
import { stampChanged, type FileStamp } from '../common/nats-creds-reload';
import { OPERATOR_SETTINGS } from './settings';
import { parseNatsCaBundle, type NatsCaBundle } from './sidecar-nats-ca';

export class NatsCaFileSource {
  private stamp: FileStamp | undefined;
  private bundle: NatsCaBundle | undefined;

  constructor(readonly file: string) {}

  /** The bundle the file holds now; throws ConfigError naming the setting, the file and the fix. */
  read(): NatsCaBundle {
    const source = `${OPERATOR_SETTINGS.sidecarNatsTlsCaFile.env} (${this.file})`;
    let stamp: FileStamp;
    try {
      const s = statSync(this.file);
      stamp = { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
    } catch (err) {
      throw new ConfigError(`${source} cannot be read (${errorMessage(err)}): mount the CA file there, or unset it`);
    }
    if (this.bundle && !stampChanged(this.stamp, stamp)) return this.bundle;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${source} cannot be read (${errorMessage(err)}): mount the CA file there, or unset it`);
    }
    const bundle = parseNatsCaBundle(text, source);
    this.stamp = stamp;
    this.bundle = bundle;
    return bundle;
  }
}
