/**
 * The local mesh's reaper: a tiny process that `fnmesh local` starts with a pipe on its stdin and tells,
 * one line each, which process groups it starts ("+<pgid>") and which are gone ("-<pgid>"). When the pipe
 * closes — the mesh exited, however it died, even by SIGKILL — every group still listed gets SIGTERM, then
 * SIGKILL after a grace period, so no function or sidecar is left running.
 */
const groups = new Set<number>();
let rest = '';

function kill(signal: NodeJS.Signals): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, signal);
    } catch {
      groups.delete(pgid);
    }
  }
}

// It lives in its own process group; a terminal's Ctrl-C or hang-up is the mesh's to handle.
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);

process.stdin.on('data', (chunk: Buffer) => {
  const lines = (rest + chunk.toString()).split('\n');
  rest = lines.pop() ?? '';
  for (const line of lines) {
    const n = Number(line.slice(1));
    if (!Number.isInteger(n) || n <= 1) continue;
    if (line.startsWith('+')) groups.add(n);
    else if (line.startsWith('-')) groups.delete(n);
  }
});

function anyAlive(): boolean {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      groups.delete(pgid);
    }
  }
  return false;
}

process.stdin.on('close', () => {
  if (groups.size === 0) process.exit(0);
  kill('SIGTERM');
  const deadline = Date.now() + 3_000;
  setInterval(() => {
    if (!anyAlive()) process.exit(0);
    if (Date.now() >= deadline) {
      kill('SIGKILL');
      process.exit(0);
    }
  }, 100);
});
process.stdin.resume();
