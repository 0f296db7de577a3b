import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { clusterAddress, inPodAddress, podIPNumber, podIPOf } from './cluster-addresses';
import { nodePortLines } from './cluster';
import { natRuleset, parseRouteHeader, routeHeader } from './sandbox-control';
import {
  destination,
  hostsFile,
  nodePortDestination,
  nodePorts,
  podHostname,
  podRoutes,
  serviceEnv,
  type NetworkView,
} from './service-routes';

const svc = (ns: string, name: string, spec: V1Service['spec']): V1Service => ({
  metadata: { namespace: ns, name },
  spec,
});

const slice = (
  ns: string,
  service: string,
  ports: Array<{ name?: string; port: number }>,
  endpoints: Array<{ ip: string; ready?: boolean; hostname?: string }>,
): V1EndpointSlice => ({
  addressType: 'IPv4',
  metadata: { namespace: ns, name: `${service}-abc`, labels: { 'kubernetes.io/service-name': service } },
  ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
  endpoints: endpoints.map((e) => ({
    addresses: [e.ip],
    ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }),
    ...(e.hostname ? { hostname: e.hostname } : {}),
  })),
});

const pod = (ns: string, name: string, ports: number[], extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod => ({
  metadata: { namespace: ns, name },
  spec: { containers: [{ name: 'app', ports: ports.map((containerPort) => ({ containerPort })) }], ...extra },
});

const kubernetes = svc('default', 'kubernetes', {
  clusterIP: '10.96.0.1',
  ports: [{ name: 'https', port: 443, targetPort: 6443, protocol: 'TCP' }],
});
const web = svc('shop', 'web', { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] });
const dns = svc('shop', 'dns', { clusterIP: '10.96.0.30', ports: [{ port: 53, protocol: 'UDP' }] });
const db = svc('shop', 'db', { clusterIP: 'None', ports: [{ name: 'peer', port: 7000 }] });

const view: NetworkView = {
  services: [kubernetes, web, dns, db],
  slices: [
    slice('shop', 'web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.0.2' }, { ip: '10.244.0.3', ready: false }]),
    slice('shop', 'db', [{ name: 'peer', port: 7000 }], [{ ip: '10.244.0.4', hostname: 'db-0' }]),
  ],
  pods: [
    { podIP: '10.244.0.2', pod: pod('shop', 'web-1', [8080]) },
    { podIP: '10.244.0.3', pod: pod('shop', 'web-2', [8080]) },
    { podIP: '10.244.0.4', pod: pod('shop', 'db-0', [], { hostname: 'db-0', subdomain: 'db' }) },
  ],
};

describe('cluster addresses', () => {
  test('pod IPs and ClusterIPs map to 127.x inside pods and back; other addresses do not', () => {
    expect(inPodAddress('10.244.1.7')).toBe('127.244.1.7');
    expect(inPodAddress('10.96.0.1')).toBe('127.96.0.1');
    expect(inPodAddress('10.1.2.3')).toBeUndefined();
    expect(inPodAddress('192.168.0.1')).toBeUndefined();
    expect(clusterAddress('127.244.1.7')).toBe('10.244.1.7');
    expect(clusterAddress('127.0.0.1')).toBeUndefined();
    expect(podIPOf(258)).toBe('10.244.1.2');
    expect(podIPNumber('10.244.1.2')).toBe(258);
  });
});

describe('routes', () => {
  test("each ClusterIP Service's TCP ports and the other pods' ports, never the pod's own address", () => {
    expect(podRoutes(view, '10.244.0.2')).toEqual([
      { address: '127.244.0.3', port: 8080 },
      { address: '127.244.0.4', port: 7000 }, // from its EndpointSlice: the pod declares no containerPort
      { address: '127.96.0.1', port: 443 },
      { address: '127.96.0.20', port: 80 },
    ]);
  });

  test('a Service port goes to its ready endpoints on the slice port of the same name', () => {
    expect(destination(view, '127.96.0.20', 80)).toEqual({
      kind: 'endpoints',
      key: 'shop/web:http',
      endpoints: [{ ip: '10.244.0.2', port: 8080 }],
    });
    expect(destination(view, '127.96.0.1', 443)).toEqual({ kind: 'apiserver' });
    expect(destination(view, '127.244.0.3', 8080)).toEqual({
      kind: 'endpoints',
      key: '10.244.0.3',
      endpoints: [{ ip: '10.244.0.3', port: 8080 }],
    });
    expect(destination(view, '127.96.0.20', 81).kind).toBe('unknown');
    expect(destination(view, '127.96.9.9', 80).kind).toBe('unknown');
    expect(destination(view, '127.0.0.1', 80).kind).toBe('unknown');
  });

  test('a Service without ready endpoints has none to pick, and its routes reject', () => {
    const v: NetworkView = { ...view, slices: [slice('shop', 'web', [{ name: 'http', port: 8080 }], [])] };
    expect(destination(v, '127.96.0.20', 80)).toEqual({ kind: 'endpoints', key: 'shop/web:http', endpoints: [] });
    // rejected in the pod (a TCP reset, kube-proxy's REJECT), not relayed
    expect(podRoutes(v, '10.244.0.9')).toContainEqual({ address: '127.96.0.20', port: 80, reject: true });
    // the kubernetes Service has no endpoints here and is never rejected
    expect(podRoutes(v, '10.244.0.9')).toContainEqual({ address: '127.96.0.1', port: 443 });
  });

  test('node ports of NodePort and LoadBalancer Services, to the same endpoints', () => {
    const np = svc('shop', 'web-np', {
      type: 'NodePort',
      clusterIP: '10.96.0.21',
      selector: {},
      ports: [{ name: 'http', port: 80, nodePort: 30080 }],
    });
    const lb = svc('shop', 'web-lb', {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.22',
      ports: [{ port: 81, nodePort: 30081 }],
    });
    const v: NetworkView = {
      ...view,
      services: [...view.services, np, lb],
      slices: [...view.slices, slice('shop', 'web-np', [{ name: 'http', port: 8080 }], [{ ip: '10.244.0.2' }])],
    };
    const routes = nodePorts(v);
    expect(routes.map((r) => [r.nodePort, r.service])).toEqual([
      [30080, 'shop/web-np'],
      [30081, 'shop/web-lb'],
    ]);
    expect(nodePortDestination(v, routes[0]!)).toEqual({
      kind: 'endpoints',
      key: 'shop/web-np:http',
      endpoints: [{ ip: '10.244.0.2', port: 8080 }],
    });
  });
});

describe('hosts file', () => {
  test("every Service's names, the short one in the pod's own namespace, headless endpoints and stable names", () => {
    const hosts = hostsFile(view, pod('shop', 'web-1', [8080]), '10.244.0.2');
    expect(hosts.split('\n')).toEqual([
      '# Kubernetes-managed hosts file (fnmesh cluster: pod and Service addresses as mapped inside pods).',
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      '127.244.0.2\tweb-1',
      '127.96.0.1\tkubernetes.default.svc.cluster.local kubernetes.default.svc kubernetes.default',
      '127.244.0.4\tdb.shop.svc.cluster.local db.shop.svc db.shop db db-0.db.shop.svc.cluster.local db-0.db.shop.svc db-0.db.shop db-0.db',
      '127.96.0.30\tdns.shop.svc.cluster.local dns.shop.svc dns.shop dns',
      '127.96.0.20\tweb.shop.svc.cluster.local web.shop.svc web.shop web',
      '',
    ]);
  });

  test('a pod with hostname and subdomain gets its FQDN; in another namespace only namespaced names', () => {
    const p = pod('other', 'x-7f9', [], { hostname: 'db-0', subdomain: 'db' });
    const hosts = hostsFile(view, p, '10.244.0.9');
    expect(hosts).toContain('127.244.0.9\tdb-0.db.other.svc.cluster.local\tdb-0.db\tdb-0\n');
    expect(hosts).toContain('127.96.0.20\tweb.shop.svc.cluster.local web.shop.svc web.shop\n');
    expect(hosts).toContain(
      '127.96.0.1\tkubernetes.default.svc.cluster.local kubernetes.default.svc kubernetes.default\n',
    );
  });

  test('the hostname is spec.hostname, else the pod name cut to 63 characters', () => {
    expect(podHostname(pod('a', 'p', [], { hostname: 'h' }))).toBe('h');
    expect(podHostname(pod('a', `${'x'.repeat(62)}-y`, []))).toBe('x'.repeat(62));
  });
});

describe('service environment variables', () => {
  test("the kubelet's variables for the namespace's Services, the kubernetes Service by its name", () => {
    const env = serviceEnv(view.services, 'shop', true);
    expect(env).toEqual({
      KUBERNETES_SERVICE_HOST: 'kubernetes.default.svc',
      KUBERNETES_SERVICE_PORT: '443',
      KUBERNETES_SERVICE_PORT_HTTPS: '443',
      KUBERNETES_PORT: 'tcp://kubernetes.default.svc:443',
      KUBERNETES_PORT_443_TCP: 'tcp://kubernetes.default.svc:443',
      KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
      KUBERNETES_PORT_443_TCP_PORT: '443',
      KUBERNETES_PORT_443_TCP_ADDR: 'kubernetes.default.svc',
      WEB_SERVICE_HOST: '127.96.0.20',
      WEB_SERVICE_PORT: '80',
      WEB_SERVICE_PORT_HTTP: '80',
      WEB_PORT: 'tcp://127.96.0.20:80',
      WEB_PORT_80_TCP: 'tcp://127.96.0.20:80',
      WEB_PORT_80_TCP_PROTO: 'tcp',
      WEB_PORT_80_TCP_PORT: '80',
      WEB_PORT_80_TCP_ADDR: '127.96.0.20',
      DNS_SERVICE_HOST: '127.96.0.30',
      DNS_SERVICE_PORT: '53',
      DNS_PORT: 'udp://127.96.0.30:53',
      DNS_PORT_53_UDP: 'udp://127.96.0.30:53',
      DNS_PORT_53_UDP_PROTO: 'udp',
      DNS_PORT_53_UDP_PORT: '53',
      DNS_PORT_53_UDP_ADDR: '127.96.0.30',
    });
  });

  test('enableServiceLinks: false keeps only the kubernetes Service; another namespace sees none of shop', () => {
    expect(Object.keys(serviceEnv(view.services, 'shop', false)).every((k) => k.startsWith('KUBERNETES_'))).toBe(true);
    expect(Object.keys(serviceEnv(view.services, 'other', true)).every((k) => k.startsWith('KUBERNETES_'))).toBe(true);
    const dashed = svc('shop', 'my-api', { clusterIP: '10.96.0.40', ports: [{ port: 8080 }] });
    expect(serviceEnv([dashed], 'shop', true).MY_API_SERVICE_HOST).toBe('127.96.0.40');
  });
});

describe('sandbox control', () => {
  test('the nftables ruleset replaces the table atomically with one DNAT rule per route', () => {
    expect(
      natRuleset([{ address: '127.96.0.20', port: 80, localPort: 41000 }], [{ address: '127.96.0.21', port: 80 }]),
    ).toBe(
      [
        'table ip fnmesh',
        'delete table ip fnmesh',
        'table ip fnmesh {',
        '  chain output {',
        '    type nat hook output priority -100; policy accept;',
        '    ip daddr 127.96.0.20 tcp dport 80 dnat to 127.0.0.1:41000',
        '  }',
        '  chain refuse {',
        '    type filter hook output priority 0; policy accept;',
        '    ip daddr 127.96.0.21 tcp dport 80 reject with tcp reset',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('route headers round-trip; anything else is refused', () => {
    expect(parseRouteHeader(routeHeader({ address: '127.96.0.20', port: 80 }).trim())).toEqual({
      address: '127.96.0.20',
      port: 80,
    });
    expect(parseRouteHeader('10.96.0.20:80')).toBeUndefined();
    expect(parseRouteHeader('127.96.0.20:0')).toBeUndefined();
    expect(parseRouteHeader('127.96.0.20:70000')).toBeUndefined();
  });
});

describe('fnmesh cluster output', () => {
  test('a gateway node port gets a curl, any other just its address', () => {
    const route = (service: string): Parameters<typeof nodePortLines>[0] => ({
      nodePort: 30080,
      service,
      port: { port: 80 },
    });
    expect(nodePortLines(route('fnmesh/fnmesh-gateway'), true)).toEqual([
      'Service fnmesh/fnmesh-gateway port 80 is reachable at http://127.0.0.1:30080 (NodePort)',
      `  curl -s -X POST http://127.0.0.1:30080/v1/api/default/functions/greeter/hello -H 'content-type: application/json' -d '{"params":{"name":"Ada"}}'`,
    ]);
    expect(nodePortLines(route('shop/web'), true)).toHaveLength(1);
    expect(nodePortLines(route('shop/web'), false)).toEqual(['Service shop/web no longer has node port 30080']);
  });
});
