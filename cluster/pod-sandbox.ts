/**
 * A pod's sandbox (the role of Kubernetes' pause container) for `fnmesh cluster`: started by the node agent
 * with `unshare --mount --net`, so it is the first process of the pod's own network and mount namespaces,
 * which every container of the pod then joins (`nsenter --net --mount`, each container then in a mount
 * namespace of its own for its volumeMounts). Like a pod, the network namespace has its own loopback: two
 * pods may both listen on 127.0.0.1:8080.
 *
 *   node pod-sandbox.js <ingress.sock> [--tmpfs=<dir> ...] [<port>=<egress.sock> ...]
 *
 * - brings the namespace's loopback up;
 * - mounts a tmpfs on each `--tmpfs` folder (the pod's emptyDir volumes with medium Memory), seen only by
 *   the pod's containers;
 * - egress: listens on 127.0.0.1:<port> inside the pod and relays each connection to the Unix socket
 *   <egress.sock>, which the agent relays to the real address on this machine (the NATS broker);
 * - ingress: listens on the Unix socket <ingress.sock>; a connection starts with "<port>\n" and is then
 *   relayed to 127.0.0.1:<port> inside the pod (the agent's HTTP probes and preStop hooks), or starts with
 *   "?<port>\n" and is answered "ok" when something accepts connections on that port (TCP probes);
 * - prints "ready" once all of that listens, and exits when its stdin closes (the agent is gone).
 * Unix sockets are files, so they reach across network namespaces.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { relay } from './relay';

function fail(message: string): never {
  process.stderr.write(`pod sandbox: ${message}\n`);
  process.exit(1);
}

function listen(server: net.Server, where: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const [ingressPath, ...specs] = process.argv.slice(2);
  if (!ingressPath) fail('usage: pod-sandbox <ingress.sock> [--tmpfs=<dir> ...] [<port>=<egress.sock> ...]');
  const lo = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (lo.status !== 0)
    fail(`cannot bring the pod's loopback up (ip link set lo up): ${lo.error?.message ?? lo.stderr.trim()}`);
  const tmpfsDirs = specs.filter((s) => s.startsWith('--tmpfs=')).map((s) => s.slice('--tmpfs='.length));
  const egressSpecs = specs.filter((s) => !s.startsWith('--tmpfs='));
  for (const dir of tmpfsDirs) {
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0777', 'tmpfs', dir], { encoding: 'utf8' });
    if (m.status !== 0) fail(`cannot mount a tmpfs on ${dir}: ${m.error?.message ?? m.stderr.trim()}`);
  }

  for (const spec of egressSpecs) {
    const i = spec.indexOf('=');
    const port = Number(spec.slice(0, i));
    const target = spec.slice(i + 1);
    if (i <= 0 || !Number.isInteger(port) || !target) fail(`bad egress "${spec}": expected <port>=<unix socket path>`);
    const server = net.createServer((inbound) => relay(inbound, net.connect(target)));
    await listen(server, { host: '127.0.0.1', port }).catch((err: Error) =>
      fail(`cannot listen on 127.0.0.1:${port} in the pod: ${err.message}`),
    );
  }

  rmSync(ingressPath, { force: true });
  const ingress = net.createServer((conn) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > 16) conn.destroy();
        return;
      }
      conn.off('data', onData);
      conn.pause();
      const line = head.subarray(0, nl).toString();
      const check = line.startsWith('?');
      const port = Number(check ? line.slice(1) : line);
      const rest = head.subarray(nl + 1);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        conn.destroy();
        return;
      }
      if (check) {
        // A TCP probe: does anything accept connections on the port?
        const probe = net.connect({ host: '127.0.0.1', port }, () => {
          probe.destroy();
          conn.end('ok\n');
        });
        probe.on('error', (err) => conn.end(`no ${err.message}\n`));
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port });
      if (rest.length) upstream.write(rest);
      relay(conn, upstream);
      conn.resume();
    };
    conn.on('data', onData);
    conn.on('error', () => conn.destroy());
  });
  await listen(ingress, { path: ingressPath }).catch((err: Error) =>
    fail(`cannot listen on ${ingressPath}: ${err.message}`),
  );

  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => undefined);
  process.stdout.write('ready\n');
}

void main();
