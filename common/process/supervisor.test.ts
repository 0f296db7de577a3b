import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Supervisor } from './supervisor';
import { LineSplitter } from './log-prefix';

const node = process.execPath;

function harness(args: string[], graceMs = 2_000) {
  const out: string[] = [];
  const reports: string[] = [];
  const pids: number[] = [];
  const sup = new Supervisor({
    label: 't-0 fn',
    command: node,
    args,
    cwd: process.cwd(),
    env: process.env,
    stdout: new LineSplitter((l) => out.push(l)),
    stderr: new LineSplitter((l) => out.push(l)),
    report: (level, message) => reports.push(`${level}: ${message}`),
    backoff: { initialMs: 20, maxMs: 80, resetAfterMs: 10_000, crashLoopAfter: 3 },
    graceMs,
    onStart: (pid) => pids.push(pid),
  });
  return { sup, out, reports, pids };
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Supervisor (real processes)', () => {
  it('restarts a crashing process with back-off and reports a crash loop', async () => {
    const h = harness(['-e', "console.log('up'); process.exit(3)"]);
    h.sup.start();
    await until(() => h.reports.some((r) => r.includes('keeps crashing')));
    await h.sup.stop();
    expect(h.reports.filter((r) => r.startsWith('warn:')).slice(0, 2)).toEqual([
      'warn: t-0 fn exited with code 3; restarting in 20 ms',
      'warn: t-0 fn exited with code 3; restarting in 40 ms',
    ]);
    expect(h.reports.find((r) => r.startsWith('error:'))).toContain(
      't-0 fn exited with code 3; it keeps crashing (3 times in a row); restarting in 80 ms',
    );
    expect(h.out.filter((l) => l === 'up').length).toBeGreaterThanOrEqual(3);
    expect(new Set(h.pids).size).toBe(h.pids.length);
  });

  it('stops gracefully with SIGTERM, and does not restart after stop', async () => {
    const h = harness([
      '-e',
      "process.on('SIGTERM', () => { console.log('draining'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000);",
    ]);
    h.sup.start();
    await until(() => h.out.includes('ready'));
    expect(await h.sup.stop()).toEqual({ code: 0, signal: null });
    expect(h.out).toContain('draining');
    expect(h.sup.running).toBe(false);
    expect(h.pids).toHaveLength(1);
  });

  it('kills with SIGKILL after the grace period when SIGTERM is ignored', async () => {
    const h = harness(
      ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);"],
      200,
    );
    h.sup.start();
    await until(() => h.out.includes('ready'));
    expect(await h.sup.stop()).toEqual({ code: null, signal: 'SIGKILL' });
    expect(h.reports.some((r) => r.includes('did not exit 200 ms after SIGTERM; killing it'))).toBe(true);
  });

  it('reports a command that does not exist', async () => {
    const reports: string[] = [];
    const sup = new Supervisor({
      label: 'x-0 fn',
      command: 'fnmesh-no-such-program',
      args: [],
      cwd: process.cwd(),
      env: process.env,
      stdout: new LineSplitter(() => undefined),
      stderr: new LineSplitter(() => undefined),
      report: (level, message) => reports.push(message),
      backoff: { initialMs: 1_000, maxMs: 1_000, resetAfterMs: 10_000, crashLoopAfter: 3 },
    });
    sup.start();
    await until(() => reports.length > 0);
    await sup.stop();
    expect(reports[0]).toContain('could not start');
    expect(reports[0]).toContain('is "fnmesh-no-such-program" installed and on PATH?');
  });

  it('with restart off, stays down after it exits, writes its output to the log file and says how it ended', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-sup-'));
    const logFile = path.join(dir, 'p.log');
    const reports: string[] = [];
    const sup = new Supervisor({
      label: 'p',
      command: node,
      args: ['-e', "console.log('to stdout'); console.error('to stderr'); process.exit(4)"],
      cwd: process.cwd(),
      env: process.env,
      logFile,
      restart: false,
      report: (level, message) => reports.push(`${level}: ${message}`),
    });
    try {
      expect(sup.lastExit).toBeUndefined();
      sup.start();
      await until(() => sup.lastExit !== undefined);
      expect(sup.lastExit).toEqual({ code: 4, signal: null });
      expect(sup.running).toBe(false);
      expect(readFileSync(logFile, 'utf8').split('\n')).toEqual(expect.arrayContaining(['to stdout', 'to stderr']));
      expect(reports.at(-1)).toBe('error: p exited with code 4');
      expect(reports.some((r) => r.includes('restarting'))).toBe(false);
    } finally {
      await sup.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stop takes a grace period of its own', async () => {
    const h = harness(['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);"]);
    h.sup.start();
    await until(() => h.out.includes('ready'));
    expect(await h.sup.stop('SIGTERM', 100)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(h.reports.some((r) => r.includes('did not exit 100 ms after SIGTERM; killing it'))).toBe(true);
  });
});
