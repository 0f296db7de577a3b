/**
 * The watcher and handover shell of nats-creds-reload.ts on real files (a folder updated like a mounted
 * Secret) with stand-in connections: the order connect → move → drain, a malformed file logged once and
 * no connection made, a refused connection tried again by the poll.
 */
import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from './logger';
import { createMeshTrust, mintUser, replicaIdentity } from './nats-identity';
import { reloadCredsOnChange, type CredsReloader } from './nats-creds-reload';

interface FakeConnection {
  name: string;
  closed: boolean;
  draining: boolean;
}

function fake(name: string, events: string[]): NatsConnection & FakeConnection {
  const c = {
    name,
    closed: false,
    draining: false,
    isClosed: () => c.closed,
    isDraining: () => c.draining,
    drain: () => {
      events.push(`drain ${name}`);
      c.draining = true;
      c.closed = true;
      return Promise.resolve();
    },
    close: () => {
      events.push(`close ${name}`);
      c.closed = true;
      return Promise.resolve();
    },
  };
  return c as unknown as NatsConnection & FakeConnection;
}

function recordingLogger(lines: Array<{ level: string; message: string; meta?: Record<string, unknown> }>): Logger {
  const log =
    (level: string) =>
    (message: string, meta?: Record<string, unknown>): void =>
      void lines.push({ level, message, ...(meta ? { meta } : {}) });
  const logger: Logger = {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: () => logger,
  };
  return logger;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('reloadCredsOnChange', () => {
  const trust = createMeshTrust();
  const identity = replicaIdentity('shop', 'cart');
  let dir: string;
  let version = 0;
  let reloader: CredsReloader | undefined;

  /** As the kubelet: a new timestamped folder, `..data` swapped to it, the file a symlink through `..data`. */
  const writeSecret = (text: string): void => {
    const stamped = `..v${version++}`;
    mkdirSync(path.join(dir, stamped));
    writeFileSync(path.join(dir, stamped, 'user.creds'), text);
    let previous: string | undefined;
    try {
      previous = readlinkSync(path.join(dir, '..data'));
    } catch {
      previous = undefined;
    }
    symlinkSync(stamped, path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    if (!previous) symlinkSync(path.join('..data', 'user.creds'), path.join(dir, 'user.creds'));
    else rmSync(path.join(dir, previous), { recursive: true, force: true });
  };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-reload-'));
    writeSecret((await mintUser(trust, identity, { ttlMs: 3_600_000 })).creds);
  });

  afterEach(async () => {
    await reloader?.stop();
    reloader = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  test('a swapped Secret: connect with the new file, move onto it, then drain the old connection', async () => {
    const events: string[] = [];
    const lines: Array<{ level: string; message: string }> = [];
    let current = fake('first', events);
    const r = reloadCredsOnChange({
      file: path.join(dir, 'user.creds'),
      logger: recordingLogger(lines),
      current: () => current,
      connect: () => {
        events.push('connect');
        return Promise.resolve(fake('second', events));
      },
      move: (next, previous) => {
        events.push(
          `move ${(previous as unknown as FakeConnection).name} → ${(next as unknown as FakeConnection).name}`,
        );
        current = next as NatsConnection & FakeConnection;
        return Promise.resolve();
      },
      debounceMs: 20,
      pollMs: 60_000,
    });
    reloader = r;
    writeSecret((await mintUser(trust, identity, { ttlMs: 3_600_000 })).creds);
    await until(() => events.includes('drain first'), 'the handover');
    expect(events).toEqual(['connect', 'move first → second', 'drain first']);
    expect(lines.map((l) => l.message)).toContain('moved to a new NATS connection with the rotated credentials');
  });

  test('a malformed file is logged once with the file, no connection is made; a good one later is taken up', async () => {
    const events: string[] = [];
    const lines: Array<{ level: string; message: string; meta?: Record<string, unknown> }> = [];
    const file = path.join(dir, 'user.creds');
    reloader = reloadCredsOnChange({
      file,
      logger: recordingLogger(lines),
      current: () => fake('first', events),
      connect: () => {
        events.push('connect');
        return Promise.resolve(fake('second', events));
      },
      move: () => Promise.resolve(),
      debounceMs: 20,
      pollMs: 60_000,
    });
    writeSecret('-----BEGIN NATS USER JWT-----\nnot a jwt\n------END NATS USER JWT------\n');
    await until(() => lines.some((l) => l.level === 'error'), 'the error');
    await reloader.check(); // the same text again: not logged again
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.meta?.file).toBe(file);
    expect(String(errors[0]!.meta?.error)).toContain(`the rotated NATS credentials file ${file} (FNMESH_NATS_CREDS)`);
    expect(events).toEqual([]);
    writeSecret((await mintUser(trust, identity, { ttlMs: 3_600_000 })).creds);
    await until(() => events.includes('connect'), 'the handover to the good file');
  });

  test('a connection the server refuses is logged and tried again by the poll', async () => {
    const lines: Array<{ level: string; message: string }> = [];
    let attempts = 0;
    reloader = reloadCredsOnChange({
      file: path.join(dir, 'user.creds'),
      logger: recordingLogger(lines),
      current: () => fake('first', []),
      connect: () => {
        attempts++;
        return attempts === 1
          ? Promise.reject(new Error('Authorization Violation'))
          : Promise.resolve(fake('second', []));
      },
      move: () => Promise.resolve(),
      debounceMs: 20,
      pollMs: 50,
    });
    writeSecret((await mintUser(trust, identity, { ttlMs: 3_600_000 })).creds);
    await until(
      () => lines.some((l) => l.message === 'moved to a new NATS connection with the rotated credentials'),
      'the second attempt',
    );
    expect(attempts).toBe(2);
    expect(lines.map((l) => l.message)).toContain(
      'the NATS server refused a connection with the rotated credentials; keeping the current one',
    );
  });
});
