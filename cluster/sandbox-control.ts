/**
 * What the node agent and a pod's sandbox (cluster/pod-sandbox.ts) say to each other about the pod's routes
 * (cluster/service-routes.ts), one JSON object a line: the agent writes `SandboxControl` on the sandbox's
 * stdin (the first before the sandbox reports ready, then whenever the pod's routes change), the sandbox
 * answers each with a `SandboxReport` line on its stdout.
 *
 * In the pod, each route is a listener on 127.0.0.1:<a port the kernel picks> and an nftables DNAT rule
 * (`nat` `output` hook of the pod's own network namespace) from the route's address and port to it: listening
 * on the route's address itself would keep the pod's apps from binding 0.0.0.0 on the same port (Linux
 * refuses a wildcard bind over a listening socket on a specific address). Each connection is relayed to the
 * agent's routes socket, starting with the line `<address>:<port>\n`; the agent decides where it goes.
 * Pure.
 */

export interface SandboxRoute {
  address: string;
  port: number;
  /**
   * Nowhere to go (a Service port with no ready endpoint): refused in the pod with a TCP reset, as
   * kube-proxy's REJECT rule does, with no listener.
   */
  reject?: boolean;
}

export interface SandboxControl {
  /** The full set of routes the pod answers on (not a change: the sandbox reconciles to it). */
  routes: SandboxRoute[];
}

export interface SandboxReport {
  routes: { listening: number; failed: Array<SandboxRoute & { error: string }> };
}

/**
 * The pod's nftables ruleset, applied atomically: a DNAT rule for each route to the local port its relay
 * listens on, a TCP reset for each rejected route.
 */
export function natRuleset(
  routes: ReadonlyArray<SandboxRoute & { localPort: number }>,
  rejected: readonly SandboxRoute[] = [],
): string {
  const rules = routes.map((r) => `    ip daddr ${r.address} tcp dport ${r.port} dnat to 127.0.0.1:${r.localPort}`);
  const rejects = rejected.map((r) => `    ip daddr ${r.address} tcp dport ${r.port} reject with tcp reset`);
  return [
    'table ip fnmesh',
    'delete table ip fnmesh',
    'table ip fnmesh {',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...rules,
    '  }',
    '  chain refuse {',
    '    type filter hook output priority 0; policy accept;',
    ...rejects,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The header a relayed connection starts with. */
export const routeHeader = (r: SandboxRoute): string => `${r.address}:${r.port}\n`;

/** `127.96.0.10:80` → the route; undefined when it is not one. */
export function parseRouteHeader(line: string): SandboxRoute | undefined {
  const m = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/.exec(line);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { address: m[1]!, port } : undefined;
}
