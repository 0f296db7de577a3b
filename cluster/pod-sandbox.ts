/**
 * A pod's sandbox (the role of Kubernetes' pause container) for `fnmesh cluster`: started by the node agent
 * with `unshare --mount --net --uts`, so it is the first process of the pod's own network, mount and UTS
 * namespaces, which every container of the pod then joins (`nsenter --net --mount --uts`, each container
 * then in a mount namespace of its own for its volumeMounts). Like a pod, the network namespace has its own
 * loopback: two pods may both listen on 127.0.0.1:8080.
 *
 *   node pod-sandbox.js <ingress.sock> [--tmpfs=<dir> ...] [--hosts=<file>] [--hostname=<name>]
 *                       [--routes=<routes.sock>] [<port>=<egress.sock> ...]
 *
 * - brings the namespace's loopback up;
 * - mounts a tmpfs on each `--tmpfs` folder (the pod's emptyDir volumes with medium Memory), seen only by
 *   the pod's containers;
 * - bind-mounts `--hosts` on /etc/hosts (the agent rewrites that file in place) and sets the hostname;
 * - routes (cluster/sandbox-control.ts): reads the pod's routes as JSON lines on its stdin (the first before
 *   it reports ready), answers each on 127.0.0.1 behind an nftables DNAT rule, and relays each connection to
 *   `--routes` (the agent's routes socket), or resets connections to a rejected one (no ready endpoint);
 *   reports each change as a JSON line on stdout;
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
import readline from 'node:readline';
import { relay } from './relay';
import { natRuleset, routeHeader, type SandboxControl, type SandboxReport, type SandboxRoute } from './sandbox-control';

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

/** The pod's route listeners, reconciled to each SandboxControl. */
class Routes {
  private readonly listeners = new Map<string, { server: net.Server; localPort: number; route: SandboxRoute }>();

  constructor(private readonly socketPath: string | undefined) {}

  async apply(wanted: SandboxRoute[]): Promise<SandboxReport> {
    const failed: SandboxReport['routes']['failed'] = [];
    const rejected = wanted.filter((r) => r.reject);
    wanted = wanted.filter((r) => !r.reject);
    const keep = new Set(wanted.map((r) => `${r.address}:${r.port}`));
    for (const [k, l] of this.listeners)
      if (!keep.has(k)) {
        l.server.close();
        this.listeners.delete(k);
      }
    for (const route of wanted) {
      const k = `${route.address}:${route.port}`;
      if (this.listeners.has(k)) continue;
      const server = net.createServer((inbound) => this.relay(inbound, { address: route.address, port: route.port }));
      try {
        await listen(server, { host: '127.0.0.1', port: 0 });
        this.listeners.set(k, {
          server,
          localPort: (server.address() as net.AddressInfo).port,
          route: { address: route.address, port: route.port },
        });
      } catch (err) {
        failed.push({ ...route, error: (err as Error).message });
      }
    }
    const rules = natRuleset(
      [...this.listeners.values()].map((l) => ({ ...l.route, localPort: l.localPort })),
      rejected,
    );
    const nft = spawnSync('nft', ['-f', '-'], { input: rules, encoding: 'utf8' });
    if (nft.status !== 0) {
      const why = nft.error ? `${nft.error.message} (install nftables: apt-get install nftables)` : nft.stderr.trim();
      for (const l of this.listeners.values()) failed.push({ ...l.route, error: `nft -f failed: ${why}` });
    }
    return { routes: { listening: this.listeners.size, failed } };
  }

  private relay(inbound: net.Socket, route: SandboxRoute): void {
    if (!this.socketPath) {
      inbound.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.socketPath);
    upstream.write(routeHeader(route));
    let answered = false;
    upstream.once('data', () => (answered = true));
    // Nowhere to go (no ready endpoint): refuse at once, as kube-proxy's REJECT does.
    upstream.on('close', () => {
      if (!answered && !inbound.destroyed) inbound.resetAndDestroy();
    });
    relay(inbound, upstream);
  }
}

async function main(): Promise<void> {
  const [ingressPath, ...specs] = process.argv.slice(2);
  if (!ingressPath)
    fail(
      'usage: pod-sandbox <ingress.sock> [--tmpfs=<dir> ...] [--hosts=<file>] [--hostname=<name>] [--routes=<sock>] [<port>=<egress.sock> ...]',
    );
  const lo = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (lo.status !== 0)
    fail(`cannot bring the pod's loopback up (ip link set lo up): ${lo.error?.message ?? lo.stderr.trim()}`);
  const option = (name: string): string[] =>
    specs.filter((s) => s.startsWith(`--${name}=`)).map((s) => s.slice(name.length + 3));
  const tmpfsDirs = option('tmpfs');
  const egressSpecs = specs.filter((s) => !s.startsWith('--'));
  for (const dir of tmpfsDirs) {
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0777', 'tmpfs', dir], { encoding: 'utf8' });
    if (m.status !== 0) fail(`cannot mount a tmpfs on ${dir}: ${m.error?.message ?? m.stderr.trim()}`);
  }
  for (const hosts of option('hosts')) {
    const m = spawnSync('mount', ['--bind', hosts, '/etc/hosts'], { encoding: 'utf8' });
    if (m.status !== 0) fail(`cannot bind ${hosts} on /etc/hosts: ${m.error?.message ?? m.stderr.trim()}`);
  }
  for (const name of option('hostname')) {
    const h = spawnSync('hostname', [name], { encoding: 'utf8' });
    if (h.status !== 0) fail(`cannot set the pod's hostname to ${name}: ${h.error?.message ?? h.stderr.trim()}`);
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

  // Routes: one control line at a time, in order; the first one before "ready".
  const routes = new Routes(option('routes')[0]);
  let first: (() => void) | undefined;
  const firstApplied = new Promise<void>((resolve) => (first = resolve));
  let chain = Promise.resolve();
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let control: SandboxControl;
    try {
      control = JSON.parse(line) as SandboxControl;
    } catch {
      process.stderr.write(`pod sandbox: ignoring a control line that is not JSON: ${line.slice(0, 200)}\n`);
      return;
    }
    chain = chain.then(async () => {
      const report = await routes.apply(Array.isArray(control.routes) ? control.routes : []);
      process.stdout.write(`${JSON.stringify(report)}\n`);
      first?.();
      first = undefined;
    });
  });
  lines.on('close', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => undefined);
  await firstApplied;
  process.stdout.write('ready\n');
}

void main();
