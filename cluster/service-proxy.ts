/**
 * The node agent's cluster networking (what kube-proxy does, on loopback and Unix sockets only): watches
 * Services and EndpointSlices, serves the routes socket every pod's sandbox relays its route connections to
 * (cluster/sandbox-control.ts), and listens on this machine's 127.0.0.1:<nodePort> for NodePort and
 * LoadBalancer Services. Each connection goes where cluster/service-routes.ts says: a Service port to one of
 * its ready endpoints in turn (round-robin), the `kubernetes` Service to the API server, a pod IP to that
 * pod; with no ready endpoint it is closed at once (the sandbox resets it, as kube-proxy REJECTs).
 * An endpoint is reached through its pod's ingress socket ("<port>\n" then the bytes).
 */
import net from 'node:net';
import { rmSync } from 'node:fs';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { KubeClient } from '../common/kube-client';
import { jsonInformerFactory, ResilientInformer } from '../common/kube-informer';
import { errorMessage } from '../common/errors';
import type { Logger } from '../common/logger';
import { relay } from './relay';
import { parseRouteHeader } from './sandbox-control';
import {
  destination,
  nodePortDestination,
  nodePorts,
  type Destination,
  type NetworkView,
  type NodePortRoute,
} from './service-routes';

export interface ServiceProxyOptions {
  client: KubeClient;
  /** The agent's routes socket (the sandboxes connect to it). */
  socketPath: string;
  /** The API server's address (the `kubernetes` Service's destination). */
  apiServer: { host: string; port: number };
  /** The pods this node runs, with their pod IPs. */
  pods(): NetworkView['pods'];
  /** The ingress socket of the pod with this pod IP on this node. */
  ingressOf(podIP: string): string | undefined;
  /** Services, EndpointSlices or node ports changed (the pods' routes and hosts files may have). */
  onChange(): void;
  /** A Service this node cannot serve (e.g. its node port is taken), for an Event. */
  serviceProblem(service: string, reason: string, message: string): void;
  /** A node port now serves (or no longer serves) a Service port. */
  onNodePort?(route: NodePortRoute, open: boolean): void;
  logger: Logger;
  /** The host node ports listen on (default 127.0.0.1). */
  nodePortHost?: string;
}

export class ServiceProxy {
  private services: ResilientInformer<V1Service> | undefined;
  private slices: ResilientInformer<V1EndpointSlice> | undefined;
  private server: net.Server | undefined;
  private readonly nodePortServers = new Map<number, { server: net.Server; route: NodePortRoute; key: string }>();
  /** Node ports that failed, by port, with the message (reported once per distinct message). */
  private readonly nodePortFailures = new Map<number, string>();
  private readonly turns = new Map<string, number>();
  private changeTimer: NodeJS.Immediate | undefined;
  private stopped = false;

  constructor(private readonly options: ServiceProxyOptions) {}

  async start(): Promise<void> {
    const { client, logger } = this.options;
    rmSync(this.options.socketPath, { force: true });
    this.server = net.createServer((conn) => this.onRouteConnection(conn));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.options.socketPath, () => resolve());
    });
    const handlers = { add: () => this.changed(), update: () => this.changed(), delete: () => this.changed() };
    this.services = new ResilientInformer<V1Service>({
      resource: 'services',
      factory: jsonInformerFactory<V1Service>({ client, path: '/api/v1/services', apiVersion: 'v1', kind: 'Service' }),
      handlers,
      resyncMs: 0,
      logger,
    });
    this.slices = new ResilientInformer<V1EndpointSlice>({
      resource: 'endpointslices',
      factory: jsonInformerFactory<V1EndpointSlice>({
        client,
        path: '/apis/discovery.k8s.io/v1/endpointslices',
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
      }),
      handlers,
      resyncMs: 0,
      logger,
    });
    await Promise.all([this.services.start(), this.slices.start()]);
    await this.syncNodePorts();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.changeTimer) clearImmediate(this.changeTimer);
    await Promise.all([this.services?.stop(), this.slices?.stop()]);
    this.server?.close();
    for (const { server } of this.nodePortServers.values()) server.close();
    this.nodePortServers.clear();
  }

  /** What the decisions read, now. */
  view(): NetworkView {
    return {
      services: this.services?.list() ?? [],
      slices: this.slices?.list() ?? [],
      pods: this.options.pods(),
    };
  }

  /** Coalesces a burst of watch events into one change. */
  private changed(): void {
    if (this.stopped || this.changeTimer) return;
    this.changeTimer = setImmediate(() => {
      this.changeTimer = undefined;
      if (this.stopped) return;
      void this.syncNodePorts().catch((err: unknown) =>
        this.options.logger.warn(`syncing the node ports failed: ${errorMessage(err)}`),
      );
      this.options.onChange();
    });
  }

  private onRouteConnection(conn: net.Socket): void {
    let head = Buffer.alloc(0);
    conn.on('error', () => conn.destroy());
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > 32) conn.destroy();
        return;
      }
      conn.off('data', onData);
      conn.pause();
      const route = parseRouteHeader(head.subarray(0, nl).toString());
      const rest = head.subarray(nl + 1);
      if (!route) {
        conn.destroy();
        return;
      }
      this.forward(conn, destination(this.view(), route.address, route.port), rest);
    };
    conn.on('data', onData);
  }

  /** Relays `conn` (with `rest` already read) to the destination; closes it at once when there is none. */
  private forward(conn: net.Socket, dest: Destination, rest: Buffer): void {
    let upstream: net.Socket;
    if (dest.kind === 'apiserver') {
      upstream = net.connect(this.options.apiServer);
    } else if (dest.kind === 'endpoints' && dest.endpoints.length > 0) {
      const reachable = dest.endpoints.filter((e) => this.options.ingressOf(e.ip));
      if (reachable.length === 0) {
        conn.destroy();
        return;
      }
      const turn = this.turns.get(dest.key) ?? 0;
      this.turns.set(dest.key, turn + 1);
      const e = reachable[turn % reachable.length]!;
      upstream = net.connect(this.options.ingressOf(e.ip)!);
      upstream.write(`${e.port}\n`);
    } else {
      conn.destroy();
      return;
    }
    if (rest.length) upstream.write(rest);
    relay(conn, upstream);
    conn.resume();
  }

  /** Opens the node ports the Services ask for and closes those no longer asked for. */
  private async syncNodePorts(): Promise<void> {
    const wanted = new Map(nodePorts(this.view()).map((r) => [r.nodePort, r]));
    for (const [port, l] of this.nodePortServers) {
      const w = wanted.get(port);
      if (w && `${w.service}:${w.port.port}` === l.key) continue;
      l.server.close();
      this.nodePortServers.delete(port);
      this.options.onNodePort?.(l.route, false);
    }
    for (const port of this.nodePortFailures.keys()) if (!wanted.has(port)) this.nodePortFailures.delete(port);
    for (const [port, route] of wanted) {
      if (this.nodePortServers.has(port) || this.stopped) continue;
      const server = net.createServer((conn) => {
        const live = this.nodePortServers.get(port)?.route ?? route;
        this.forward(conn, nodePortDestination(this.view(), live), Buffer.alloc(0));
      });
      const host = this.options.nodePortHost ?? '127.0.0.1';
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port }, () => resolve());
        });
      } catch (err) {
        const message = `cannot listen on ${host}:${port} for the node port of Service ${route.service} port ${route.port.port}: ${errorMessage(err)}; stop what uses that port on this machine or give the Service another nodePort`;
        if (this.nodePortFailures.get(port) !== message) {
          this.nodePortFailures.set(port, message);
          this.options.logger.warn(message);
          this.options.serviceProblem(route.service, 'NodePortUnavailable', message);
        }
        continue;
      }
      this.nodePortFailures.delete(port);
      this.nodePortServers.set(port, { server, route, key: `${route.service}:${route.port.port}` });
      this.options.logger.info(`Service ${route.service} port ${route.port.port}: node port ${host}:${port}`);
      this.options.onNodePort?.(route, true);
    }
  }
}
