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
}

export interface SandboxControl {
  /** The full set of routes the pod answers on (not a change: the sandbox reconciles to it). */
  routes: SandboxRoute[];
}

export interface SandboxReport {
  routes: { listening: number; failed: Array<SandboxRoute & { error: string }> };
}

/** The pod's nftables ruleset for `routes` (each with the local port its relay listens on), applied atomically. */
export function natRuleset(routes: ReadonlyArray<SandboxRoute & { localPort: number }>): string {
  const rules = routes.map((r) => `    ip daddr ${r.address} tcp dport ${r.port} dnat to 127.0.0.1:${r.localPort}`);
  return [
    'table ip fnmesh',
    'delete table ip fnmesh',
    'table ip fnmesh {',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...rules,
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
