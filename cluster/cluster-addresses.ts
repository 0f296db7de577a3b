/**
 * The addresses of `fnmesh cluster`, one definition. The API server sees pod IPs in 10.244.0.0/16 and
 * ClusterIPs in 10.96.0.0/16 (EndpointSlices refuse loopback addresses); inside every pod's network namespace,
 * which has only its loopback, the same address is reached at 127.<b>.<c>.<d>: 10.244.0.7 → 127.244.0.7,
 * 10.96.0.10 → 127.96.0.10. Pure.
 */

/** The pod IPs the node agent hands out: 10.244.<i / 256>.<i % 256>. */
export const POD_IP_PREFIX = '10.244.';
/** The API server's --service-cluster-ip-range (cluster/control-plane.ts passes it). */
export const SERVICE_CIDR = '10.96.0.0/16';
const SERVICE_IP_PREFIX = '10.96.';

/** The DNS domain of Services (`name.ns.svc.cluster.local`). */
export const CLUSTER_DOMAIN = 'cluster.local';

/**
 * The name the `kubernetes` Service is reached by in pods (KUBERNETES_SERVICE_HOST): the API server's serving
 * certificate names it, while the address it resolves to in pods (127.96.0.1) is not among its SANs.
 */
export const API_SERVICE_HOST = 'kubernetes.default.svc';

function isClusterAddress(ip: string): boolean {
  return (ip.startsWith(POD_IP_PREFIX) || ip.startsWith(SERVICE_IP_PREFIX)) && /^\d+\.\d+\.\d+\.\d+$/.test(ip);
}

/** The in-pod address of a pod IP or ClusterIP; undefined for any other address. */
export function inPodAddress(clusterIP: string): string | undefined {
  return isClusterAddress(clusterIP) ? `127.${clusterIP.slice(3)}` : undefined;
}

/** The pod IP or ClusterIP an in-pod address stands for; undefined for any other address. */
export function clusterAddress(inPod: string): string | undefined {
  if (!inPod.startsWith('127.')) return undefined;
  const ip = `10.${inPod.slice(4)}`;
  return isClusterAddress(ip) ? ip : undefined;
}

/** The pod IP of number `i` (2 ≤ i < 65 536). */
export function podIPOf(i: number): string {
  return `${POD_IP_PREFIX}${Math.floor(i / 256)}.${i % 256}`;
}

/** The number of a pod IP (podIPOf's inverse). */
export function podIPNumber(ip: string): number {
  const [, , a, b] = ip.split('.').map(Number);
  return a! * 256 + b!;
}
