/**
 * The brokers an integration suite can run against: the real nats-server and fnmesh's embedded broker.
 * `describe.each(BROKER_TARGETS)('... (%s)', ...)` runs a suite on both with the same expectations.
 */
import { startBroker, type Broker, type BrokerUser } from '../../broker';
import { readFileSync } from 'node:fs';
import { startNatsServer, type OperatorMode, type TlsFiles } from './nats-server';
import { freePort } from './ports';

export type { BrokerUser } from '../../broker';

export interface BrokerStartOptions {
  token?: string;
  maxPayload?: number;
  users?: BrokerUser[];
  /** Outbound bytes per client before it is closed as a slow consumer (nats-server's max_pending). */
  maxPendingBytes?: number;
  /** Decentralized JWT auth: nats-server's operator mode with a memory resolver. */
  operator?: OperatorMode;
  /** Serve TLS (PEM files); with `caFile`, clients must present a certificate it signed. */
  tls?: TlsFiles;
}

export interface RunningBroker {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stops the broker abruptly (all connections dropped); `start()` brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
}

export interface BrokerTarget {
  name: 'nats-server' | 'embedded broker';
  start(options?: BrokerStartOptions): Promise<RunningBroker>;
  toString(): string;
}

const natsServer: BrokerTarget = {
  name: 'nats-server',
  toString: () => 'nats-server',
  async start(options = {}) {
    const users = options.users?.map((u) => {
      if (u.user === undefined || u.password === undefined) {
        throw new Error('nats-server target: users need user and password (nats-server has no per-user tokens)');
      }
      const publish = u.permissions?.publish;
      return {
        user: u.user,
        password: u.password,
        permissions: u.permissions && {
          // the embedded broker lets a user with a publish allow list answer requests; do the same here
          publish: publish && [...publish, '_INBOX.>'],
          subscribe: u.permissions.subscribe,
        },
      };
    });
    const server = await startNatsServer({
      token: options.token,
      maxPayload: options.maxPayload,
      users,
      maxPending: options.maxPendingBytes,
      operator: options.operator,
      tls: options.tls,
    });
    return server;
  },
};

const embedded: BrokerTarget = {
  name: 'embedded broker',
  toString: () => 'embedded broker',
  async start(options = {}) {
    const port = await freePort();
    const boot = (): Promise<Broker> =>
      startBroker({
        port,
        token: options.token,
        users: options.users,
        maxPayload: options.maxPayload,
        maxPendingBytes: options.maxPendingBytes,
        jwt: options.operator && { operators: [options.operator.operatorJwt], accounts: options.operator.accountJwts },
        tls: options.tls && {
          cert: readFileSync(options.tls.certFile),
          key: readFileSync(options.tls.keyFile),
          ca: options.tls.caFile === undefined ? undefined : readFileSync(options.tls.caFile),
        },
      });
    let broker: Broker | undefined = await boot();
    const stopBroker = async (): Promise<void> => {
      const b = broker;
      broker = undefined;
      await b?.close();
    };
    const start = async (): Promise<void> => {
      if (!broker) broker = await boot();
    };
    return {
      url: `nats://127.0.0.1:${port}`,
      port,
      start,
      kill: stopBroker,
      stop: stopBroker,
      async restart() {
        await stopBroker();
        await start();
      },
    };
  },
};

export const BROKER_TARGETS: BrokerTarget[] = [natsServer, embedded];
