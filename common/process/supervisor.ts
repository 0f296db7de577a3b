/**
 * One supervised process: started in its own process group, its output prefixed line by line, restarted
 * with exponential back-off when it exits on its own, and stopped gracefully (SIGTERM, then SIGKILL after
 * a grace period) when asked.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { DEFAULT_BACKOFF, onCrash, type BackoffPolicy, type BackoffState } from './backoff';
import type { LineSplitter } from './log-prefix';

export interface SupervisorOptions {
  /** e.g. `greeter-0 fn`: used in messages. */
  label: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Where its output goes: line by line to `stdout`/`stderr`, or appended as it is to `logFile`. */
  stdout?: LineSplitter;
  stderr?: LineSplitter;
  logFile?: string;
  /** Messages about the process (started, exited, restarting, keeps crashing). */
  report: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Restart it when it exits on its own (default true); when false, it stays down and `lastExit` says how. */
  restart?: boolean;
  backoff?: BackoffPolicy;
  /** After SIGTERM, wait this long for the process to exit before SIGKILL. */
  graceMs?: number;
  /** Called after each start with the new pid. */
  onStart?: (pid: number) => void;
  /**
   * Start it in a process group of its own (default true: it and its children are stopped as one, and a
   * terminal's Ctrl-C reaches only its supervisor, which stops it in order). False keeps it in this process's
   * group, so that a signal to the group (Ctrl-C in a test run) reaches it even when this process cannot act.
   */
  detached?: boolean;
}

/** Every live child of this process, so an exit handler can kill what is left. */
const live = new Set<ChildProcess>();

/** Told about every process group started and ended (the reaper keeps a copy outside this process). */
export interface ChildListener {
  added(pgid: number): void;
  removed(pgid: number): void;
}
let listener: ChildListener | undefined;
export function setChildListener(l: ChildListener | undefined): void {
  listener = l;
}

export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const child of live) killGroup(child, signal);
}

/** Signals the process group a detached child leads (what is left of it, even once the leader has exited). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  signalGroup(child, signal);
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(e: ExitInfo): string {
  return e.signal ? `killed by ${e.signal}` : e.code === null ? 'not running' : `exit code ${e.code}`;
}

export class Supervisor {
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private state: BackoffState = { consecutiveCrashes: 0 };
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  private last: ExitInfo | undefined;
  private readonly policy: BackoffPolicy;
  private readonly graceMs: number;

  constructor(private readonly options: SupervisorOptions) {
    this.policy = options.backoff ?? DEFAULT_BACKOFF;
    this.graceMs = options.graceMs ?? 10_000;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** How the last run ended; undefined while the first one runs (or before it). */
  get lastExit(): ExitInfo | undefined {
    return this.last;
  }

  start(): void {
    this.stopping = false;
    this.spawnOnce();
  }

  private spawnOnce(): void {
    const o = this.options;
    this.restartTimer = undefined;
    let child: ChildProcess;
    const fd = o.logFile === undefined ? undefined : openSync(o.logFile, 'a');
    const stdio: StdioOptions = fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd];
    try {
      child = spawn(o.command, o.args, { cwd: o.cwd, env: o.env, stdio, detached: o.detached ?? true });
    } catch (err) {
      o.report('error', `${o.label}: cannot start "${o.command}": ${(err as Error).message}`);
      this.last = { code: null, signal: null };
      if (o.restart !== false) this.scheduleRestart(0);
      return;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.child = child;
    live.add(child);
    // The reaper signals process groups: only a detached child leads one.
    if (child.pid !== undefined && (o.detached ?? true)) listener?.added(child.pid);
    this.startedAt = Date.now();
    child.stdout?.on('data', (d: Buffer) => o.stdout?.push(d));
    child.stderr?.on('data', (d: Buffer) => o.stderr?.push(d));
    let settled = false;
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
        if (settled) return;
        settled = true;
        live.delete(child);
        if (child.pid !== undefined && (o.detached ?? true)) listener?.removed(child.pid);
        o.stdout?.flush();
        o.stderr?.flush();
        if (this.child === child) this.child = undefined;
        this.last = { code, signal };
        resolve({ code, signal });
        if (this.stopping) return;
        const uptime = Date.now() - this.startedAt;
        const how = error
          ? `could not start: ${error.message}${(error as NodeJS.ErrnoException).code === 'ENOENT' ? ` (is "${o.command}" installed and on PATH? cwd ${o.cwd})` : ''}`
          : signal
            ? `was killed by ${signal}`
            : `exited with code ${code}`;
        if (o.restart === false) o.report('error', `${o.label} ${how}`);
        else this.scheduleRestart(uptime, how);
      };
      child.once('error', (err) => done(null, null, err));
      child.once('exit', (code, signal) => done(code, signal));
    });
    if (child.pid !== undefined) {
      o.report('info', `${o.label} started (pid ${child.pid})`);
      o.onStart?.(child.pid);
    }
  }

  private scheduleRestart(uptimeMs: number, how = 'failed'): void {
    if (this.stopping) return;
    const decision = onCrash(this.state, uptimeMs, this.policy);
    this.state = decision.state;
    const delay = decision.delayMs;
    if (decision.crashLoop) {
      this.options.report(
        'error',
        `${this.options.label} ${how}; it keeps crashing (${decision.state.consecutiveCrashes} times in a row); restarting in ${delay} ms. Look at its output above.`,
      );
    } else {
      this.options.report('warn', `${this.options.label} ${how}; restarting in ${delay} ms`);
    }
    this.restartTimer = setTimeout(() => this.spawnOnce(), delay);
  }

  /** SIGKILL now (and no restart): for exit handlers, which cannot wait. */
  kill(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.child) killGroup(this.child, 'SIGKILL');
  }

  /**
   * Stops the process (and cancels any pending restart): `signal`, then SIGKILL after `graceMs`. Resolves when
   * it has exited, with how it exited.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = this.graceMs): Promise<ExitInfo> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child) return { code: null, signal: null };
    killGroup(child, signal);
    const timer = setTimeout(() => {
      this.options.report('warn', `${this.options.label} did not exit ${graceMs} ms after ${signal}; killing it`);
      killGroup(child, 'SIGKILL');
    }, graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }
}
