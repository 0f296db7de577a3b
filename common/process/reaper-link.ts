/**
 * Starts the reaper (built mode only: dist/common/process/reaper.js) that kills the children's process groups if
 * this process dies without stopping them (SIGKILL, OOM), and returns the listener that keeps its list.
 * Children run in their own process groups so that a terminal's Ctrl-C reaches only this process, which
 * then stops them in order.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ChildListener } from './supervisor';

export function startReaper(): ChildListener | undefined {
  const script = path.join(__dirname, 'reaper.js');
  if (!existsSync(script)) return undefined;
  const reaper = spawn(process.execPath, [script], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  let broken = false;
  reaper.on('error', () => (broken = true));
  reaper.unref();
  const stdin = reaper.stdin!;
  stdin.on('error', () => (broken = true));
  // The pipe must not keep this process alive.
  (stdin as unknown as { unref?: () => void }).unref?.();
  return {
    added: (pgid) => void (broken || stdin.write(`+${pgid}\n`)),
    removed: (pgid) => void (broken || stdin.write(`-${pgid}\n`)),
  };
}
