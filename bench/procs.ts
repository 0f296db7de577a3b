/** Child processes for the benchmark, each awaited until ready and killed at the end. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SHRINK_GAP_MS, SIDECAR_SETTINGS } from '../sidecar/settings';

/** The port helpers: the tests' and the mesh's own (common/process/ports.ts). */
export { freePort, waitForPort as waitPort } from '../common/process/ports';

export interface Proc {
  name: string;
  child: ChildProcess;
  rssMb(): number;
  stop(): Promise<void>;
}

export function startProc(name: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL')
      console.error(`bench: ${name} exited (${code ?? signal}): ${tail}`);
  });
  return {
    name,
    child,
    rssMb() {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) / 1024 : NaN;
      } catch {
        return NaN;
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      });
    },
  };
}

/** Polls an HTTP URL until it answers 2xx. */
export async function waitHttpOk(url: string, timeoutMs = 20_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return Date.now() - start;
    } catch {
      // not up yet
    }
    if (Date.now() - start > timeoutMs) throw new Error(`${url} did not answer 2xx within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * How long a sidecar is left quiet after load before its "after load" reading: its quiet time before its two
 * collections and the gap between them (its defaults; the benches' sidecars do not set them), plus 2 s for
 * the pages they free to go back.
 */
export const SIDECAR_QUIET_MS = Number(SIDECAR_SETTINGS.idleGcMs.default) + SHRINK_GAP_MS + 2_000;

/**
 * The process's RSS once it holds still: four readings 500 ms apart within 0.3 MB of each other, or the
 * last reading at `deadlineMs` (then `settled` is false, and the table says so).
 */
export async function settledRss(proc: Proc, deadlineMs: number): Promise<{ mb: number; settled: boolean }> {
  const end = Date.now() + deadlineMs;
  const last: number[] = [];
  for (;;) {
    last.push(proc.rssMb());
    if (last.length > 4) last.shift();
    if (last.length === 4 && Math.max(...last) - Math.min(...last) <= 0.3) return { mb: last[3]!, settled: true };
    if (Date.now() >= end) return { mb: last[last.length - 1]!, settled: false };
    await new Promise((r) => setTimeout(r, 500));
  }
}
