import { KubeApiError } from '../common/kube-client';
import { silentLogger, type Logger } from '../common/logger';
import { waitFor } from '../test/helpers/wait';
import { Controller, TerminalError, failurePolicy, type Reconciler } from './controller';
import { WorkQueue } from './workqueue';

function apiError(code: number, reason: string): KubeApiError {
  return new KubeApiError(
    'PATCH',
    '/apis/apps/v1/namespaces/default/deployments/orders',
    code,
    JSON.stringify({ kind: 'Status', code, reason, message: `${reason} happened` }),
    {},
  );
}

/** A logger that records each line with the meta of its children. */
function recordingLogger(lines: Array<Record<string, unknown>>, meta: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (message: string, m?: Record<string, unknown>) =>
    void lines.push({ level, message, ...meta, ...m });
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (m) => recordingLogger(lines, { ...meta, ...m }),
  };
}

describe('Controller', () => {
  let controller: Controller | undefined;
  afterEach(async () => {
    await controller?.stop();
    controller = undefined;
  });

  function run(
    reconcile: Reconciler,
    workers = 2,
    logger: Logger = silentLogger,
    queue = new WorkQueue({ baseDelayMs: 1, maxDelayMs: 20 }),
  ) {
    controller = new Controller({ name: 'test', queue, reconcile, workers, logger });
    controller.start();
    return queue;
  }

  test('reconciles every key added, distinct keys in parallel', async () => {
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const release: Array<() => void> = [];
    const queue = run(async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((resolve) => release.push(resolve));
      running--;
      seen.push(key);
    });
    queue.add('ns/a');
    queue.add('ns/b');
    await waitFor(() => release.length === 2, { what: 'two reconciles running' });
    expect(maxRunning).toBe(2);
    release.splice(0).forEach((r) => r());
    await waitFor(() => seen.length === 2, { what: 'both done' });
    expect(seen.sort()).toEqual(['ns/a', 'ns/b']);
  });

  test('never runs one key twice at once, and runs it again when it changed meanwhile', async () => {
    let running = 0;
    let overlap = false;
    let calls = 0;
    let release: (() => void) | undefined;
    const queue = run(async () => {
      calls++;
      running++;
      if (running > 1) overlap = true;
      if (calls === 1) await new Promise<void>((resolve) => (release = resolve));
      running--;
    }, 4);
    queue.add('ns/a');
    await waitFor(() => release !== undefined, { what: 'first reconcile running' });
    queue.add('ns/a');
    queue.add('ns/a');
    release!();
    await waitFor(() => calls === 2, { what: 'second reconcile' });
    expect(overlap).toBe(false);
    await waitFor(() => queue.inProgress() === 0 && queue.len() === 0, { what: 'idle' });
    expect(calls).toBe(2);
  });

  test('requeueAfterMs reconciles the key again later', async () => {
    let calls = 0;
    run(async () => (++calls < 3 ? { requeueAfterMs: 5 } : {})).add('ns/a');
    await waitFor(() => calls === 3, { what: 'three reconciles' });
  });

  test('a failing key backs off and is retried until it succeeds; success forgets its back-off', async () => {
    let calls = 0;
    const queue = run(async () => {
      if (++calls < 4) throw apiError(500, 'InternalError');
    });
    queue.add('ns/a');
    await waitFor(() => calls === 4, { what: 'success after three failures' });
    await waitFor(() => queue.inProgress() === 0, { what: 'done' });
    expect(queue.numRequeues('ns/a')).toBe(0);
  });

  test.each<[string, unknown]>([
    ['an invalid object (422)', apiError(422, 'Invalid')],
    ['forbidden (403)', apiError(403, 'Forbidden')],
    ['a TerminalError', new TerminalError('spec.port: taken')],
  ])('%s is not retried', async (_name, err) => {
    let calls = 0;
    const lines: Array<Record<string, unknown>> = [];
    const queue = run(
      async () => {
        calls++;
        throw err;
      },
      1,
      recordingLogger(lines),
    );
    queue.add('ns/a');
    await waitFor(() => lines.some((l) => l.level === 'error'), { what: 'the failure reported' });
    await waitFor(() => queue.inProgress() === 0, { what: 'done' });
    // Any retry would have been due after 1 ms; the queue stays empty with no delayed add pending.
    expect(queue.numRequeues('ns/a')).toBe(0);
    expect(queue.len()).toBe(0);
    expect(calls).toBe(1);
  });

  test('every log line of one reconcile carries its reconcile id and key', async () => {
    const lines: Array<Record<string, unknown>> = [];
    let n = 0;
    const q = new WorkQueue();
    controller = new Controller({
      name: 'fsvc',
      queue: q,
      workers: 1,
      logger: recordingLogger(lines),
      newReconcileId: () => `r${++n}`,
      reconcile: async (_key, log) => {
        log.info('step one');
        log.info('step two');
      },
    });
    controller.start();
    q.add('ns/a');
    q.add('ns/b');
    await waitFor(() => lines.filter((l) => l.message === 'step two').length === 2, { what: 'both reconciles logged' });
    const steps = lines.filter((l) => String(l.message).startsWith('step'));
    expect(steps.map((l) => [l.reconcileId, l.key, l.controller])).toEqual([
      ['r1', 'ns/a', 'fsvc'],
      ['r1', 'ns/a', 'fsvc'],
      ['r2', 'ns/b', 'fsvc'],
      ['r2', 'ns/b', 'fsvc'],
    ]);
  });

  test('stop waits for reconciles in progress and ends the workers', async () => {
    let finished = false;
    let started = false;
    const queue = run(async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 20));
      finished = true;
    });
    queue.add('ns/a');
    await waitFor(() => started, { what: 'reconcile started' });
    await controller!.stop();
    expect(finished).toBe(true);
    expect(queue.isShutdown()).toBe(true);
    controller = undefined;
  });
});

describe('failurePolicy', () => {
  test.each<[string, unknown, string, string]>([
    ['conflict', apiError(409, 'Conflict'), 'conflict', 'retry-now'],
    ['invalid', apiError(422, 'Invalid'), 'invalid', 'terminal'],
    [
      'throttled',
      new KubeApiError('GET', '/x', 429, '{"kind":"Status","code":429,"reason":"TooManyRequests"}', {
        'retry-after': '2',
      }),
      'throttled',
      'retry-after',
    ],
    ['network', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'network', 'backoff'],
    ['terminal', new TerminalError('no'), 'terminal', 'terminal'],
  ])('%s', (_name, err, cls, kind) => {
    const f = failurePolicy(err);
    expect(f.class).toBe(cls);
    expect(f.policy.kind).toBe(kind);
  });
});
