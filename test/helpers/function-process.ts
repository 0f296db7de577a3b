/**
 * A function process the test controls: a plain node:http server in a child process on a fixed port, that
 * can be SIGKILLed, made to hang (accept connections, never answer) and started again on the same port. It
 * prints one line per call it read (`exec <fn> <attempt>`), so a test counts executions.
 *
 * Functions: `ok` → {"pid": ...}; `fail` → 500; `hold` → answers when told (`release`); `die` → reads the
 * call, then exits (the sidecar sees "socket hang up"); `freeze` → reads the call, then blocks its event loop
 * (calls after it stay unread in the kernel until the process dies: a real RST).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './ports';
import { waitFor } from './wait';

const SCRIPT = `
const http = require('node:http');
let hanging = false;
const held = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (hanging) return; // accepted, read, never answered
    if (req.method === 'GET') { res.end('ok'); return; }
    const fn = req.url.slice(1);
    process.stdout.write('exec ' + fn + ' ' + (req.headers['x-fnmesh-attempt'] || '1') + '\\n');
    if (fn === 'ok') res.end(JSON.stringify({ pid: process.pid }));
    else if (fn === 'fail') { res.statusCode = 500; res.end(JSON.stringify({ error: 'it failed' })); }
    else if (fn === 'hold') held.push(res);
    else if (fn === 'die') process.exit(1);
    else if (fn === 'freeze') { for (;;) {} }
    else { res.statusCode = 404; res.end('{}'); }
  });
});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  for (const cmd of d.split('\\n')) {
    if (cmd === 'hang') hanging = true;
    else if (cmd === 'serve') hanging = false;
    else if (cmd === 'release') for (const r of held.splice(0)) r.end('"released"');
  }
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

export interface FunctionProcess {
  port: number;
  /** Calls the process read, by function name (over every start of it). */
  executions: Record<string, number>;
  /** The x-fnmesh-attempt each call read carried ("1" when absent), in order. */
  attempts: string[];
  start(): Promise<void>;
  kill(): Promise<void>;
  send(command: 'hang' | 'serve' | 'release'): void;
}

export async function functionProcess(): Promise<FunctionProcess> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const fp: FunctionProcess = {
    port,
    executions: {},
    attempts: [],
    async start() {
      const c = spawn(process.execPath, ['-e', SCRIPT], {
        env: { PATH: process.env.PATH, PORT: String(port) },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      child = c;
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      let listening = false;
      let buffered = '';
      c.stdout!.setEncoding('utf8');
      c.stdout!.on('data', (d: string) => {
        buffered += d;
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          if (line === 'listening') listening = true;
          const m = /^exec (\S+) (\S+)$/.exec(line);
          if (m) {
            fp.executions[m[1]!] = (fp.executions[m[1]!] ?? 0) + 1;
            fp.attempts.push(m[2]!);
          }
        }
      });
      await waitFor(() => listening || c.exitCode !== null, { what: `function process on port ${port}` });
      if (!listening) throw new Error(`the function process on port ${port} exited at start`);
    },
    async kill() {
      child?.kill('SIGKILL');
      await exited;
    },
    send(command) {
      child?.stdin!.write(`${command}\n`);
    },
  };
  await fp.start();
  return fp;
}
