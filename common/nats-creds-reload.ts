/**
 * Picking up a rotated `.creds` file (FNMESH_NATS_CREDS) in a running part without dropping a call.
 *
 * Kubernetes updates a mounted Secret by writing a new timestamped folder and swapping the `..data` symlink
 * in the mount folder; the file's own inode never changes, so the folder is watched (and, should the watch
 * miss it, the file is stat-ed every few seconds) and the content compared. A new file is parsed first: a
 * malformed, expired or refused one is logged with the file name and the fix, and the current connection is
 * kept (a running replica never stops over it). A valid one is handed over to: a second connection logs in
 * with it, the owner moves its subscriptions and new work onto it, and the old connection is drained once the
 * work it carries (in-flight requests, replies to calls it received) has finished. The old JWT may then
 * expire: nothing uses it.
 *
 * Reconnects of the current connection read the file too (nats-creds-authenticator.ts), so a connection the
 * server dropped comes back with the newest credentials; then no handover is needed.
 *
 * The decisions (has the file changed, what its new text means) are pure functions below; the watcher and
 * the handover are the I/O around them.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { Gauge, type Registry } from 'prom-client';
import { errorMessage } from './errors';
import type { Logger } from './logger';
import { natsCredsInUse } from './nats';
import { NATS_CLIENT_ENV } from './nats-client-settings';
import { checkCredsDates, parseCreds, type ParsedCreds } from './nats-identity/creds-format';

/** How long file events are collected before the file is read (the kubelet's swap is several events). */
export const CREDS_RELOAD_DEBOUNCE_MS = 100;
/** How often the file is stat-ed in case a change was not seen by the folder watch. */
export const CREDS_RELOAD_POLL_MS = 5_000;
/** How long the old connection may take to drain once its work is done. */
export const CREDS_HANDOVER_DRAIN_MS = 5_000;

const FIX = `write a valid .creds file (user JWT and user nkey seed) to ${NATS_CLIENT_ENV.creds}; fnmesh's operator mints them into the part's Secret`;

// ---------------------------------------------------------------------------------------------- decisions

/** What identifies a version of the file without reading it (a symlink swap changes the inode). */
export interface FileStamp {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/** Whether the file may have changed since `before` (undefined: not there / not yet seen). */
export function stampChanged(before: FileStamp | undefined, now: FileStamp | undefined): boolean {
  if (before === undefined || now === undefined) return before !== now;
  return before.dev !== now.dev || before.ino !== now.ino || before.size !== now.size || before.mtimeMs !== now.mtimeMs;
}

/** The file as read: its text, or why it could not be read. */
export type CredsRead = { text: string } | { error: string };

export type CredsDecision =
  /** The same text as last time: nothing to do. */
  | { action: 'none' }
  /**
   * The file holds the credentials the connection already uses (e.g. a reconnect picked them up), or it is
   * the first look and the connection's credentials are not known (it is taken as the starting point).
   */
  | { action: 'in-use' }
  /** Keep the current connection; `problem` names the file, what is wrong and the fix. */
  | { action: 'keep'; problem: string }
  /** New valid credentials: hand the connection over to them. */
  | { action: 'handover'; creds: ParsedCreds };

export interface CredsDecisionInput {
  file: string;
  read: CredsRead;
  /** The text the last decision was made on (undefined: none yet). */
  lastText: string | undefined;
  /** The credentials the current connection logged in with. */
  inUse: ParsedCreds | undefined;
  now: Date;
}

export function credsDecision(input: CredsDecisionInput): CredsDecision {
  const { file, read } = input;
  const source = `the rotated NATS credentials file ${file} (${NATS_CLIENT_ENV.creds})`;
  const keeping = input.inUse
    ? `; keeping the current connection (user ${input.inUse.publicKey}, valid until ${input.inUse.expiresAt?.toISOString() ?? 'it is revoked'})`
    : '; keeping the current connection';
  if ('error' in read) return { action: 'keep', problem: `${source} ${read.error}: ${FIX}${keeping}` };
  if (read.text === input.lastText) return { action: 'none' };
  let creds: ParsedCreds;
  try {
    creds = parseCreds(read.text, source, FIX);
    checkCredsDates(creds, input.now, source, FIX);
  } catch (err) {
    return { action: 'keep', problem: `${errorMessage(err)}${keeping}` };
  }
  if (input.inUse ? creds.jwt === input.inUse.jwt : input.lastText === undefined) return { action: 'in-use' };
  return { action: 'handover', creds };
}

/** Collapses a burst of calls into one `fire` after `ms` of quiet. */
export class Debounce {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly fire: () => void,
  ) {}

  poke(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fire();
    }, this.ms);
    this.timer.unref();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

// --------------------------------------------------------------------------------------------------- I/O

function stampOf(file: string): FileStamp | undefined {
  try {
    const s = statSync(file);
    return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    return undefined;
  }
}

function readText(file: string): CredsRead {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      error:
        code === 'ENOENT'
          ? 'does not exist (any more)'
          : code === 'EACCES'
            ? 'is not readable by this process (permission denied)'
            : `cannot be read (${errorMessage(err)})`,
    };
  }
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    const settled = p.then(
      () => true,
      () => true,
    );
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface CredsReloadOptions {
  /** The `.creds` file (FNMESH_NATS_CREDS). */
  file: string;
  logger: Logger;
  /** The connection the owner uses now. */
  current(): NatsConnection;
  /** A second connection with the file's credentials (connectNats with `failFirstConnect`). */
  connect(): Promise<NatsConnection>;
  /**
   * The owner moves onto `next`: subscribes there, sends new work there, drains its subscriptions on
   * `previous`, and resolves once `previous` carries no more work (its requests answered, its calls replied).
   */
  move(next: NatsConnection, previous: NatsConnection): Promise<void>;
  debounceMs?: number;
  pollMs?: number;
  drainTimeoutMs?: number;
  now?: () => Date;
}

export interface CredsReloader {
  /** Checks the file now (the watcher and the poll call this too); resolves when any handover is done. */
  check(): Promise<void>;
  /** Stops watching; waits for a handover under way. */
  stop(): Promise<void>;
}

/** Watches the credentials file and hands the owner's connection over to each valid new version. */
export function reloadCredsOnChange(options: CredsReloadOptions): CredsReloader {
  const { file, logger } = options;
  const now = options.now ?? (() => new Date());
  const drainTimeoutMs = options.drainTimeoutMs ?? CREDS_HANDOVER_DRAIN_MS;
  let stamp = stampOf(file);
  // set by the first check (below): the file as the connection logged in with it is "in use", a file that
  // changed since the connection was made is handed over to at once
  let lastText: string | undefined;
  let retry = false;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;

  const handover = async (creds: ParsedCreds): Promise<boolean> => {
    const previous = options.current();
    if (previous.isClosed() || previous.isDraining()) return true;
    const from = natsCredsInUse(previous);
    logger.info('the NATS credentials file holds a new user; connecting with it to hand over', {
      file,
      from: from?.publicKey,
      to: creds.publicKey,
    });
    let next: NatsConnection;
    try {
      next = await options.connect();
    } catch (err) {
      logger.error('the NATS server refused a connection with the rotated credentials; keeping the current one', {
        file,
        user: creds.publicKey,
        error: errorMessage(err),
        fix: `check that ${file} holds a user the server trusts (signed by the mesh account's signing key) and that the server is reachable; it is tried again every ${Math.round((options.pollMs ?? CREDS_RELOAD_POLL_MS) / 1000)} s`,
      });
      return false;
    }
    if (stopped) {
      await next.close().catch(() => undefined);
      return true;
    }
    await options.move(next, previous);
    if (!previous.isClosed()) {
      const drained = previous.isDraining() ? true : await within(previous.drain(), drainTimeoutMs);
      if (!drained) await previous.close().catch(() => undefined);
    }
    logger.info('moved to a new NATS connection with the rotated credentials', {
      file,
      from: from?.publicKey,
      to: natsCredsInUse(next)?.publicKey ?? creds.publicKey,
      expires: (natsCredsInUse(next) ?? creds).expiresAt?.toISOString() ?? 'never',
    });
    return true;
  };

  const runCheck = async (): Promise<void> => {
    const read = readText(file);
    const decision = credsDecision({ file, read, lastText, inUse: natsCredsInUse(options.current()), now: now() });
    retry = false;
    switch (decision.action) {
      case 'none':
        return;
      case 'in-use':
        lastText = (read as { text: string }).text;
        return;
      case 'keep':
        logger.error('the NATS credentials file changed to something unusable; keeping the current connection', {
          file,
          error: decision.problem,
        });
        if ('text' in read) lastText = read.text;
        else lastText = undefined; // a file that comes back (even as before) is looked at again
        return;
      case 'handover':
        if (await handover(decision.creds)) lastText = (read as { text: string }).text;
        else retry = true;
        return;
    }
  };

  const check = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          stamp = stampOf(file);
          await runCheck();
        } while (again && !stopped);
      } catch (err) {
        logger.error('checking the NATS credentials file failed; keeping the current connection', {
          file,
          error: errorMessage(err),
        });
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const debounce = new Debounce(options.debounceMs ?? CREDS_RELOAD_DEBOUNCE_MS, () => void check());
  let watcher: FSWatcher | undefined;
  try {
    // the folder, not the file: the kubelet swaps the ..data symlink beside it, the file's inode stays
    watcher = watch(path.dirname(file), { persistent: false }, () => debounce.poke());
    watcher.on('error', (err) => {
      logger.warn('cannot watch the NATS credentials folder; checking the file every few seconds instead', {
        file,
        error: errorMessage(err),
      });
      watcher?.close();
      watcher = undefined;
    });
  } catch (err) {
    logger.warn('cannot watch the NATS credentials folder; checking the file every few seconds instead', {
      file,
      error: errorMessage(err),
    });
  }
  const poll = setInterval(() => {
    if (retry || stampChanged(stamp, stampOf(file))) void check();
  }, options.pollMs ?? CREDS_RELOAD_POLL_MS);
  poll.unref();
  void check();

  return {
    check,
    async stop() {
      stopped = true;
      clearInterval(poll);
      debounce.cancel();
      watcher?.close();
      watcher = undefined;
      if (running) await running;
    },
  };
}

/**
 * `fnmesh_nats_credentials_expiry_timestamp_seconds`: when the user JWT of the part's current NATS connection
 * expires (Unix seconds; absent without a .creds file). Alert when it comes close: rotation is not reaching
 * the part.
 */
export function registerCredsExpiryMetric(registry: Registry, current: () => NatsConnection | undefined): void {
  new Gauge({
    name: 'fnmesh_nats_credentials_expiry_timestamp_seconds',
    help: "When the user JWT of this part's current NATS connection expires (Unix seconds)",
    registers: [registry],
    collect() {
      this.reset();
      const nc = current();
      const exp = nc ? natsCredsInUse(nc)?.expiresAt : undefined;
      if (exp) this.set(exp.getTime() / 1000);
    },
  });
}
