/**
 * The cluster networking of `fnmesh cluster`, decided from what the API server holds (Services,
 * EndpointSlices) and the pods this node runs. Pure: the node agent (cluster/service-proxy.ts) carries it out.
 *
 * - Routes: the in-pod addresses (cluster/cluster-addresses.ts) every pod's sandbox answers on and relays to
 *   the agent: each ClusterIP Service port at its mapped ClusterIP (rejected — a TCP reset in the pod — while
 *   it has no ready endpoint), and each pod IP (mapped) on the pod's TCP containerPorts plus the EndpointSlice
 *   ports that name it. A pod gets no route to its own address: its apps bind 0.0.0.0, which already covers it.
 * - Where a connection to a route goes: a ClusterIP Service port to one of its ready endpoints (the
 *   EndpointSlices' port of the same name), the `kubernetes` Service to the API server itself (it has no
 *   endpoints here), a pod IP port to that pod.
 * - NodePort and LoadBalancer Service ports, served on this machine's 127.0.0.1:<nodePort>.
 * - The pod's /etc/hosts: localhost, its own hostname (and FQDN with a subdomain), every Service's
 *   `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local` (and `name` in the pod's own namespace) at its
 *   mapped ClusterIP, a headless Service's names at each ready endpoint, and each endpoint's hostname under
 *   its headless Service (a StatefulSet pod's stable name).
 * - The Service environment variables the kubelet sets (`{SVC}_SERVICE_HOST`, `{SVC}_PORT_…`).
 */
import type { V1EndpointSlice, V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { API_SERVICE_HOST, CLUSTER_DOMAIN, clusterAddress, inPodAddress } from './cluster-addresses';
import type { SandboxRoute } from './sandbox-control';

/** An in-pod address (127.x.y.z) and port the pod's sandbox answers on (or rejects). */
export type Route = SandboxRoute;

/** Everything the decisions read. */
export interface NetworkView {
  services: readonly V1Service[];
  slices: readonly V1EndpointSlice[];
  /** The pods this node runs, with the pod IP it gave each. */
  pods: ReadonlyArray<{ podIP: string; pod: V1Pod }>;
}

export interface Endpoint {
  /** A pod IP (10.244.x.y). */
  ip: string;
  port: number;
}

/** Where one connection goes. */
export type Destination =
  { kind: 'apiserver' } | { kind: 'endpoints'; key: string; endpoints: Endpoint[] } | { kind: 'unknown'; why: string };

export const routeKey = (address: string, port: number): string => `${address}:${port}`;
const serviceKey = (s: V1Service): string => `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name ?? ''}`;

const isTcp = (protocol: string | undefined): boolean => (protocol ?? 'TCP') === 'TCP';

/** A Service with a ClusterIP (not headless, not ExternalName). */
function clusterIPOf(s: V1Service): string | undefined {
  const ip = s.spec?.clusterIP;
  if (!ip || ip === 'None' || s.spec?.type === 'ExternalName') return undefined;
  return ip;
}

const isHeadless = (s: V1Service): boolean => s.spec?.clusterIP === 'None';

export function isApiService(s: V1Service): boolean {
  return s.metadata?.namespace === 'default' && s.metadata?.name === 'kubernetes';
}

/** A Service's EndpointSlices (label kubernetes.io/service-name). */
function slicesOf(view: NetworkView, s: V1Service): V1EndpointSlice[] {
  const ns = s.metadata?.namespace;
  const name = s.metadata?.name;
  return view.slices.filter(
    (e) => e.metadata?.namespace === ns && e.metadata?.labels?.['kubernetes.io/service-name'] === name,
  );
}

/** Endpoints without `ready: false` (nil means ready), IPv4, in the slice's order. */
function readyAddresses(slice: V1EndpointSlice): Array<{ ip: string; hostname?: string }> {
  if (slice.addressType !== 'IPv4') return [];
  const out: Array<{ ip: string; hostname?: string }> = [];
  for (const e of slice.endpoints ?? []) {
    if (e.conditions?.ready === false) continue;
    const ip = e.addresses[0];
    if (ip) out.push(e.hostname ? { ip, hostname: e.hostname } : { ip });
  }
  return out;
}

/** The ready endpoints of one Service port: the slices' port of the same name. */
export function readyEndpoints(view: NetworkView, s: V1Service, port: V1ServicePort): Endpoint[] {
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  for (const slice of slicesOf(view, s)) {
    const p = (slice.ports ?? []).find((x) => (x.name ?? '') === (port.name ?? '') && isTcp(x.protocol));
    if (p?.port === undefined) continue;
    for (const a of readyAddresses(slice)) {
      const k = `${a.ip}:${p.port}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ ip: a.ip, port: p.port });
    }
  }
  return out;
}

/** The TCP ports a pod IP answers on: its containers' ports and the EndpointSlice ports that name it. */
function podPorts(view: NetworkView, podIP: string, pod: V1Pod): number[] {
  const ports = new Set<number>();
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])])
    for (const p of c.ports ?? []) if (isTcp(p.protocol)) ports.add(p.containerPort);
  for (const slice of view.slices) {
    if (!(slice.endpoints ?? []).some((e) => e.addresses.includes(podIP))) continue;
    for (const p of slice.ports ?? []) if (p.port !== undefined && isTcp(p.protocol)) ports.add(p.port);
  }
  return [...ports];
}

/** The routes of the pod whose IP is `ownPodIP`, sorted. */
export function podRoutes(view: NetworkView, ownPodIP: string): Route[] {
  const out = new Map<string, Route>();
  const add = (address: string | undefined, port: number): void => {
    if (address) out.set(routeKey(address, port), { address, port });
  };
  for (const s of view.services) {
    const ip = clusterIPOf(s);
    const address = ip && inPodAddress(ip);
    if (!address) continue;
    for (const p of s.spec?.ports ?? []) {
      if (!isTcp(p.protocol)) continue;
      const reject = !isApiService(s) && readyEndpoints(view, s, p).length === 0;
      out.set(routeKey(address, p.port), reject ? { address, port: p.port, reject } : { address, port: p.port });
    }
  }
  for (const { podIP, pod } of view.pods) {
    if (podIP === ownPodIP) continue;
    for (const port of podPorts(view, podIP, pod)) add(inPodAddress(podIP), port);
  }
  return [...out.values()].sort((a, b) => a.address.localeCompare(b.address) || a.port - b.port);
}

/** Where a connection to in-pod `address`:`port` goes. */
export function destination(view: NetworkView, address: string, port: number): Destination {
  const ip = clusterAddress(address);
  if (!ip) return { kind: 'unknown', why: `${address} is not a mapped pod IP or ClusterIP` };
  const service = view.services.find((s) => clusterIPOf(s) === ip);
  if (service) {
    const sp = (service.spec?.ports ?? []).find((p) => p.port === port && isTcp(p.protocol));
    if (!sp) return { kind: 'unknown', why: `Service ${serviceKey(service)} has no TCP port ${port}` };
    if (isApiService(service)) return { kind: 'apiserver' };
    return {
      kind: 'endpoints',
      key: `${serviceKey(service)}:${sp.name ?? sp.port}`,
      endpoints: readyEndpoints(view, service, sp),
    };
  }
  if (view.pods.some((p) => p.podIP === ip)) return { kind: 'endpoints', key: ip, endpoints: [{ ip, port }] };
  return { kind: 'unknown', why: `no Service or pod on this node has the address ${ip}` };
}

export interface NodePortRoute {
  nodePort: number;
  /** namespace/name */
  service: string;
  port: V1ServicePort;
}

/** The node ports of NodePort and LoadBalancer Services (TCP), sorted by node port. */
export function nodePorts(view: NetworkView): NodePortRoute[] {
  const out: NodePortRoute[] = [];
  for (const s of view.services) {
    if (s.spec?.type !== 'NodePort' && s.spec?.type !== 'LoadBalancer') continue;
    for (const p of s.spec.ports ?? [])
      if (p.nodePort && isTcp(p.protocol)) out.push({ nodePort: p.nodePort, service: serviceKey(s), port: p });
  }
  return out.sort((a, b) => a.nodePort - b.nodePort);
}

/** The node port's destination (its Service port's ready endpoints). */
export function nodePortDestination(view: NetworkView, route: NodePortRoute): Destination {
  const s = view.services.find((x) => serviceKey(x) === route.service);
  if (!s) return { kind: 'unknown', why: `Service ${route.service} is gone` };
  return {
    kind: 'endpoints',
    key: `${route.service}:${route.port.name ?? route.port.port}`,
    endpoints: readyEndpoints(view, s, route.port),
  };
}

/** The pod's hostname (spec.hostname, else its name, cut to 63 characters as the kubelet does). */
export function podHostname(pod: V1Pod): string {
  const h = pod.spec?.hostname || pod.metadata?.name || 'pod';
  return h.slice(0, 63).replace(/[-.]+$/, '');
}

/** The names of a Service (or a name under it) as seen from a pod in namespace `podNs`. */
function names(name: string, ns: string, podNs: string): string[] {
  const out = [`${name}.${ns}.svc.${CLUSTER_DOMAIN}`, `${name}.${ns}.svc`, `${name}.${ns}`];
  if (ns === podNs) out.push(name);
  return out;
}

/** The pod's /etc/hosts. */
export function hostsFile(view: NetworkView, pod: V1Pod, podIP: string): string {
  const ns = pod.metadata?.namespace ?? 'default';
  const hostname = podHostname(pod);
  const own = inPodAddress(podIP) ?? podIP;
  const subdomain = pod.spec?.subdomain;
  const lines = [
    '# Kubernetes-managed hosts file (fnmesh cluster: pod and Service addresses as mapped inside pods).',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    subdomain
      ? `${own}\t${hostname}.${subdomain}.${ns}.svc.${CLUSTER_DOMAIN}\t${hostname}.${subdomain}\t${hostname}`
      : `${own}\t${hostname}`,
  ];
  const entries = new Map<string, Set<string>>(); // address → names, so each name appears once per address
  const add = (address: string | undefined, list: string[]): void => {
    if (!address) return;
    const set = entries.get(address) ?? new Set<string>();
    for (const n of list) set.add(n);
    entries.set(address, set);
  };
  const sorted = [...view.services].sort((a, b) => serviceKey(a).localeCompare(serviceKey(b)));
  for (const s of sorted) {
    const name = s.metadata?.name ?? '';
    const sns = s.metadata?.namespace ?? 'default';
    const ip = clusterIPOf(s);
    if (ip) add(inPodAddress(ip), names(name, sns, ns));
    if (!isHeadless(s)) continue;
    for (const slice of slicesOf(view, s))
      for (const a of readyAddresses(slice)) {
        add(inPodAddress(a.ip), names(name, sns, ns));
        if (a.hostname) add(inPodAddress(a.ip), names(`${a.hostname}.${name}`, sns, ns));
      }
  }
  for (const [address, set] of entries) lines.push(`${address}\t${[...set].join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** `my-svc` → `MY_SVC` (the kubelet's service env prefix). */
const envName = (name: string): string => name.toUpperCase().replace(/-/g, '_');

/**
 * The Service environment variables of a pod in `namespace`, as the kubelet sets them: the `kubernetes`
 * Service's always, and (unless `enableServiceLinks: false`) those of every Service of the namespace with
 * a ClusterIP. The host is the mapped ClusterIP; for the `kubernetes` Service it is API_SERVICE_HOST.
 */
export function serviceEnv(
  services: readonly V1Service[],
  namespace: string,
  enableServiceLinks: boolean,
): Record<string, string> {
  const env: Record<string, string> = {};
  const chosen = services.filter(
    (s) => isApiService(s) || (enableServiceLinks && s.metadata?.namespace === namespace && clusterIPOf(s)),
  );
  for (const s of chosen) {
    const ip = clusterIPOf(s);
    if (!ip) continue;
    const host = isApiService(s) ? API_SERVICE_HOST : (inPodAddress(ip) ?? ip);
    const ports = s.spec?.ports ?? [];
    const first = ports[0];
    if (!first) continue;
    const prefix = envName(s.metadata?.name ?? '');
    env[`${prefix}_SERVICE_HOST`] = host;
    env[`${prefix}_SERVICE_PORT`] = String(first.port);
    for (const p of ports) if (p.name) env[`${prefix}_SERVICE_PORT_${envName(p.name)}`] = String(p.port);
    const proto = (first.protocol ?? 'TCP').toLowerCase();
    env[`${prefix}_PORT`] = `${proto}://${host}:${first.port}`;
    for (const p of ports) {
      const pr = p.protocol ?? 'TCP';
      const base = `${prefix}_PORT_${p.port}_${pr}`;
      env[base] = `${pr.toLowerCase()}://${host}:${p.port}`;
      env[`${base}_PROTO`] = pr.toLowerCase();
      env[`${base}_PORT`] = String(p.port);
      env[`${base}_ADDR`] = host;
    }
  }
  return env;
}
