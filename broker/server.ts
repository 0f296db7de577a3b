/**
 * The embedded broker: a TCP server speaking the NATS client protocol for one machine (no clustering, no
 * JetStream). It accepts connections, routes messages through the subscription index, coalesces the writes
 * that one client's read produces into one socket write per receiving connection (as nats-server flushes
 * its clients at the end of each read), and keeps the counters that `stats()` exposes.
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { silentLogger, type Logger } from '../common/logger';
import { ClientConnection, type ConnectionContext, type Subscription } from './client-connection';
import { Authenticator, type BrokerUser, type JwtTrust } from './permissions';
import { Sublist } from './sublist';

export interface BrokerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** A single token every client must present (CONNECT auth_token). */
  token?: string;
  /** Users with a token or user/password and optional publish/subscribe allow lists. */
  users?: BrokerUser[];
  /**
   * Decentralized JWT auth (nats-server's operator mode with a memory resolver): trusted operators and the
   * preloaded account JWTs. Clients present a user JWT and sign the nonce of INFO with the user's nkey.
   */
  jwt?: JwtTrust;
  /** Serve TLS: clients upgrade after INFO (`tls_required`), as with nats-server. */
  tls?: BrokerTlsOptions;
  /** Largest message (headers + body) a client may publish; default 1 MiB. */
  maxPayload?: number;
  /** Outbound bytes a connection may have pending before it is closed as a slow consumer; default 64 MiB. */
  maxPendingBytes?: number;
  /** Server-initiated PING interval; default 2 minutes (nats-server's). 0 disables. */
  pingIntervalMs?: number;
  /** Unanswered PINGs before a connection is closed as stale; default 2. */
  maxPingsOut?: number;
  /** How long a client has to authenticate when auth is on; default 2 s (nats-server's). */
  authTimeoutMs?: number;
  logger?: Logger;
  serverName?: string;
}

export interface BrokerTlsOptions {
  /** PEM certificate chain and private key of the server. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle: when set, clients must present a certificate it signed (nats-server's `verify: true`). */
  ca?: string | Buffer;
}

export interface BrokerStats {
  connections: number;
  totalConnections: number;
  subscriptions: number;
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
  slowConsumers: number;
}

export interface Broker {
  host: string;
  port: number;
  /** nats://host:port */
  url: string;
  stats(): BrokerStats;
  close(): Promise<void>;
}

/** The protocol level of nats-server 2.9 this broker implements (headers, no responders). */
export const BROKER_PROTOCOL_VERSION = '2.9.0';

export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const server = new BrokerServer(options);
  await server.listen(options.host ?? '127.0.0.1', options.port ?? 0);
  return server;
}

class BrokerServer implements Broker, ConnectionContext {
  readonly sublist = new Sublist<Subscription>();
  readonly auth: Authenticator;
  readonly logger: Logger;
  readonly maxPayload: number;
  readonly maxPendingBytes: number;
  readonly pingIntervalMs: number;
  readonly maxPingsOut: number;
  readonly authTimeoutMs: number;
  readonly stallHighWater: number;
  readonly stallMaxMs: number;
  host = '';
  port = 0;

  private readonly tcp: net.Server;
  private readonly conns = new Set<ClientConnection>();
  private readonly dirty: ClientConnection[] = [];
  private flushScheduled = false;
  private nextClientId = 0;
  private readonly serverId: string;
  private readonly serverName: string;
  private infoPrefix = '';
  private closing: Promise<void> | undefined;
  private readonly tlsContext: tls.SecureContext | undefined;
  private readonly verifyClients: boolean;
  private readonly counters = { totalConnections: 0, inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0, slowConsumers: 0 };

  constructor(options: BrokerOptions) {
    this.auth = new Authenticator(options.token, options.users, options.jwt);
    this.logger = (options.logger ?? silentLogger).child({ component: 'broker' });
    this.maxPayload = options.maxPayload ?? 1024 * 1024;
    this.maxPendingBytes = options.maxPendingBytes ?? 64 * 1024 * 1024;
    this.pingIntervalMs = options.pingIntervalMs ?? 120_000;
    this.maxPingsOut = options.maxPingsOut ?? 2;
    this.authTimeoutMs = options.authTimeoutMs ?? 2_000;
    // producers are paused once a subscriber has a quarter of its allowance pending, well before the cut
    this.stallHighWater = Math.max(64 * 1024, Math.floor(this.maxPendingBytes / 4));
    this.stallMaxMs = 1_000;
    this.tlsContext =
      options.tls && tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key, ca: options.tls.ca });
    this.verifyClients = options.tls?.ca !== undefined;
    this.serverId = 'N' + base32(randomBytes(35)).slice(0, 55);
    this.serverName = options.serverName ?? this.serverId;
    this.tcp = net.createServer((socket) => this.accept(socket));
  }

  get url(): string {
    return `nats://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.tcp.once('error', onError);
      this.tcp.listen(port, host, () => {
        this.tcp.off('error', onError);
        resolve();
      });
    });
    const addr = this.tcp.address();
    if (!addr || typeof addr === 'string') throw new Error('broker: cannot read listen address');
    this.host = host;
    this.port = addr.port;
    this.tcp.on('error', (err) => this.logger.error('broker: listener error', { error: err.message }));
    const info: Record<string, unknown> = {
      server_id: this.serverId,
      server_name: this.serverName,
      version: BROKER_PROTOCOL_VERSION,
      proto: 1,
      go: `node${process.versions.node}`,
      host: this.host,
      port: this.port,
      headers: true,
    };
    if (this.auth.required) info.auth_required = true;
    if (this.tlsContext) {
      info.tls_required = true;
      if (this.verifyClients) info.tls_verify = true;
    }
    info.max_payload = this.maxPayload;
    // client_id and client_ip are appended per connection
    this.infoPrefix = 'INFO ' + JSON.stringify(info).slice(0, -1);
    this.logger.info('embedded NATS broker listening', {
      url: this.url,
      auth: this.auth.required,
      jwt: this.auth.nonceRequired,
      tls: this.tlsContext !== undefined,
    });
  }

  infoLine(clientId: number, clientIp: string | undefined, nonce: string | undefined): string {
    const ip = clientIp ? `,"client_ip":${JSON.stringify(clientIp.replace(/^::ffff:/, ''))}` : '';
    const n = nonce === undefined ? '' : `,"nonce":"${nonce}"`;
    // nats-server writes a space before the CRLF of INFO
    const line = `${this.infoPrefix},"client_id":${clientId}${ip}${n}} \r\n`;
    // outbound lines are written as latin1 (bytes); carry any UTF-8 in the server name through unchanged
    return Buffer.from(line, 'utf8').toString('latin1');
  }

  stats(): BrokerStats {
    return { connections: this.conns.size, subscriptions: this.sublist.size, ...this.counters };
  }

  route(from: ClientConnection, subject: string, reply: string | undefined, headerSize: number, payload: Buffer): void {
    this.counters.inMsgs++;
    this.counters.inBytes += payload.length;
    const result = this.sublist.match(subject);
    const noEcho = !from.echo;
    let delivered = false;
    for (const sub of result.psubs) {
      if (noEcho && sub.conn === from) continue;
      if (sub.conn.deliver(sub, subject, reply, headerSize, payload)) delivered = true;
      if (sub.conn.congested) sub.conn.stall(from);
    }
    for (const group of result.qsubs) {
      const n = group.length;
      let k = n === 1 ? 0 : Math.floor(Math.random() * n);
      for (let tries = 0; tries < n; tries++, k = k + 1 === n ? 0 : k + 1) {
        const sub = group[k]!;
        if (noEcho && sub.conn === from) continue;
        if (sub.conn.deliver(sub, subject, reply, headerSize, payload)) {
          delivered = true;
          if (sub.conn.congested) sub.conn.stall(from);
          break;
        }
      }
    }
    if (!delivered && reply !== undefined && from.noResponders) from.sendNoResponders(reply);
  }

  countOut(bytes: number): void {
    this.counters.outMsgs++;
    this.counters.outBytes += bytes;
  }

  countSlowConsumer(): void {
    this.counters.slowConsumers++;
  }

  markDirty(conn: ClientConnection): void {
    this.dirty.push(conn);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // normally flushed at the end of the read that queued the bytes (flushPending); this catches
    // writes made outside a read (pings, timers)
    setImmediate(this.flushAll);
  }

  flushPending(): void {
    if (this.dirty.length === 0) return;
    const list = this.dirty.splice(0);
    for (const c of list) c.flush();
  }

  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    this.flushPending();
  };

  onClosed(conn: ClientConnection): void {
    this.conns.delete(conn);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.tcp.close(() => resolve());
      for (const c of [...this.conns]) c.close('server shutdown', true);
      this.logger.info('embedded NATS broker stopped', { url: this.url });
    });
    return this.closing;
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const id = ++this.nextClientId;
    // nats-server's nonce: 11 random bytes, raw base64url
    const nonce = this.auth.nonceRequired ? randomBytes(11).toString('base64url') : undefined;
    let conn: ClientConnection;
    if (this.tlsContext) {
      // INFO goes out in clear; the client then starts the TLS handshake (nats-server's order)
      socket.write(this.infoLine(id, socket.remoteAddress, nonce));
      const secure = new tls.TLSSocket(socket, {
        isServer: true,
        secureContext: this.tlsContext,
        requestCert: this.verifyClients,
        rejectUnauthorized: this.verifyClients,
      });
      secure.once('error', (err) => {
        this.logger.debug('broker: TLS handshake failed', { error: err.message });
        secure.destroy();
      });
      // a client that never completes the handshake is dropped, as nats-server's TLS timeout does
      const handshakeTimer = setTimeout(() => secure.destroy(), this.authTimeoutMs);
      handshakeTimer.unref();
      secure.once('secure', () => clearTimeout(handshakeTimer));
      secure.once('close', () => clearTimeout(handshakeTimer));
      conn = new ClientConnection(id, secure, this, nonce, true);
    } else {
      conn = new ClientConnection(id, socket, this, nonce);
    }
    this.counters.totalConnections++;
    this.conns.add(conn);
    conn.start();
  }
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}
