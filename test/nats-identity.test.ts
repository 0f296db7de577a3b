/**
 * Issue 11 on the wire: every part its own NATS user with only the permissions it needs
 * (common/nats-identity), enforced by a real nats-server in operator mode. Each attack from the issue is
 * tried with a replica's real credentials and refused; the mesh's legitimate traffic (calls, internal calls,
 * replies into per-identity inboxes, micro discovery) still flows. Plain nats.js clients: this is about the
 * permissions, not about the gateway or sidecar code.
 * The same expectations on nats-server and on the embedded broker.
 */
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator, errors as natsErrors, type Msg, type NatsConnection } from '@nats-io/nats-core';
import {
  callSubject,
  internalCallSubject,
  serviceCallWildcard,
  serviceQueueGroup,
  GATEWAY_QUEUE_GROUP,
  INTERNAL_WILDCARD,
} from '../common/protocol';
import { MICRO_VERBS, microServiceName, microSubjects } from '../common/micro-names';
import {
  GATEWAY_IDENTITY,
  meshAccountJwts,
  createMeshTrust,
  inboxPrefix,
  mintUser,
  operatorJwt,
  replicaIdentity,
  type MeshIdentity,
  type MeshTrust,
} from '../common/nats-identity';
import { BROKER_TARGETS, type RunningBroker } from './helpers/brokers';
import { waitFor } from './helpers/wait';

jest.setTimeout(30_000);

const NS = 'default';
const GREETER = replicaIdentity(NS, 'greeter');
const AUTHZ = replicaIdentity(NS, 'authz');
const AUTHZ_ADDRESS = { namespace: NS, service: 'authz' };
const enc = new TextEncoder();
const dec = new TextDecoder();

describe.each(BROKER_TARGETS)('NATS identities and permissions (%s)', (target) => {
  let trust: MeshTrust;
  let server: RunningBroker;
  const conns: NatsConnection[] = [];
  const creds = new Map<string, string>();

  async function as(identity: MeshIdentity, key = JSON.stringify(identity)): Promise<NatsConnection> {
    let text = creds.get(key);
    if (!text) {
      text = (await mintUser(trust, identity, { ttlMs: 3_600_000 })).creds;
      creds.set(key, text);
    }
    const nc = await connect({
      servers: server.url,
      authenticator: credsAuthenticator(enc.encode(text)),
      inboxPrefix: inboxPrefix(identity),
      reconnect: false,
    });
    watchRefusals(nc);
    conns.push(nc);
    return nc;
  }

  /** The permission refusals each connection got (nats.js reports them as status errors). */
  const refusals = new WeakMap<NatsConnection, Error[]>();

  function watchRefusals(nc: NatsConnection): void {
    const list: Error[] = [];
    refusals.set(nc, list);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) list.push(s.error);
      }
    })();
  }

  // The server answers a refused PUB or SUB with -ERR before it answers the PING of the flush that follows.
  async function expectPublishRefused(nc: NatsConnection, subject: string, reply?: string): Promise<void> {
    nc.publish(subject, enc.encode('attack'), reply ? { reply } : undefined);
    await nc.flush();
    await new Promise((r) => setImmediate(r)); // one turn for the status iterator
    const refused = refusals.get(nc)!.map(String);
    expect(refused).toContainEqual(expect.stringContaining(`Permissions Violation for Publish to "${subject}"`));
  }

  async function expectSubscribeRefused(nc: NatsConnection, subject: string, queue?: string): Promise<void> {
    const sub = nc.subscribe(subject, queue ? { queue } : {});
    let closed: unknown = 'still open';
    void sub.closed.then((v) => (closed = v));
    await nc.flush();
    await new Promise((r) => setImmediate(r));
    expect(closed).toBeInstanceOf(natsErrors.PermissionViolationError);
    expect(String(closed)).toContain(`Permissions Violation for Subscription to "${subject}"`);
  }

  /** A replica answering its service's calls in its queue group, recording what it got. */
  function serveCalls(nc: NatsConnection, identity: MeshIdentity & { kind: 'replica' }, answer: string): Msg[] {
    const got: Msg[] = [];
    nc.subscribe(serviceCallWildcard(identity.namespace, identity.service), {
      queue: serviceQueueGroup(identity.namespace, identity.service),
      callback: (_err, msg) => {
        got.push(msg);
        msg.respond(enc.encode(answer));
      },
    });
    return got;
  }

  beforeAll(async () => {
    trust = createMeshTrust();
    server = await target.start({
      operator: { operatorJwt: await operatorJwt(trust), accountJwts: Object.values(await meshAccountJwts(trust)) },
    });
  });

  afterEach(async () => {
    await Promise.all(conns.splice(0).map((nc) => nc.close().catch(() => undefined)));
  });

  afterAll(async () => {
    await server?.stop();
  });

  test('a client without credentials is refused', async () => {
    await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/Authorization Violation/);
  });

  test('a user JWT signed by another trust chain is refused', async () => {
    const other = createMeshTrust();
    const forged = await mintUser(other, GREETER, { ttlMs: 3_600_000 });
    await expect(
      connect({ servers: server.url, reconnect: false, authenticator: credsAuthenticator(enc.encode(forged.creds)) }),
    ).rejects.toThrow(/Authorization Violation/);
  });

  test('an expired user JWT is refused', async () => {
    const expired = await mintUser(trust, GREETER, { ttlMs: 1_000, now: new Date(Date.now() - 60_000) });
    await expect(
      connect({ servers: server.url, reconnect: false, authenticator: credsAuthenticator(enc.encode(expired.creds)) }),
    ).rejects.toThrow(/Authorization Violation|expired/i);
  });

  test('legitimate: gateway → replica in its queue group → reply into the gateway inbox', async () => {
    const gateway = await as(GATEWAY_IDENTITY);
    const greeter = await as(GREETER);
    const got = serveCalls(greeter, GREETER as MeshIdentity & { kind: 'replica' }, '"hello"');
    await greeter.flush();
    const reply = await gateway.request(callSubject(NS, 'greeter', 'hello'), enc.encode('{}'), { timeout: 5_000 });
    expect(dec.decode(reply.data)).toBe('"hello"');
    expect(got[0]!.reply!.startsWith(`${inboxPrefix(GATEWAY_IDENTITY)}.`)).toBe(true);
  });

  test('legitimate: a replica calls through the gateway on its own fnmesh.gw subject; the reply reaches its inbox', async () => {
    const gateway = await as(GATEWAY_IDENTITY);
    const greeter = await as(GREETER);
    const seen: string[] = [];
    gateway.subscribe(INTERNAL_WILDCARD, {
      queue: GATEWAY_QUEUE_GROUP,
      callback: (_err, msg) => {
        seen.push(msg.subject);
        msg.respond(enc.encode('"via gateway"'));
      },
    });
    await gateway.flush();
    const subject = internalCallSubject(
      { namespace: NS, service: 'greeter' },
      { ...AUTHZ_ADDRESS, function: 'canGreet' },
    );
    const reply = await greeter.request(subject, enc.encode('{}'), { timeout: 5_000 });
    expect(dec.decode(reply.data)).toBe('"via gateway"');
    expect(seen).toEqual([subject]);
  });

  test('legitimate: micro discovery ($SRV.PING, INFO, STATS) is answered by the replica on all its subjects', async () => {
    const greeter = await as(GREETER);
    const observer = await as({ kind: 'observer' });
    // the subjects the sidecar's MicroDiscovery subscribes (sidecar/micro.ts)
    const subjects = MICRO_VERBS.flatMap((verb) => microSubjects(verb, microServiceName(NS, 'greeter'), 'replica-1'));
    for (const subject of subjects) {
      greeter.subscribe(subject, {
        callback: (_e, msg) => {
          msg.respond(enc.encode(JSON.stringify({ subject })));
        },
      });
    }
    await greeter.flush();
    expect(refusals.get(greeter)).toEqual([]);
    for (const subject of subjects) {
      const reply = await observer.request(subject, undefined, { timeout: 5_000 });
      expect(JSON.parse(dec.decode(reply.data))).toEqual({ subject });
    }
  });

  test("legitimate: a replica asks its own service's replicas for their state ($SRV.PING.<name>), and no other service's, nor INFO/STATS", async () => {
    const a = await as(GREETER);
    const b = await as(GREETER);
    const name = microServiceName(NS, 'greeter');
    for (const [nc, id] of [
      [a, 'replica-a'],
      [b, 'replica-b'],
    ] as const)
      nc.subscribe(microSubjects('PING', name, id)[1]!, {
        callback: (_e, msg) => {
          msg.respond(enc.encode(JSON.stringify({ id })));
        },
      });
    await Promise.all([a.flush(), b.flush()]);
    const ids: string[] = [];
    for await (const m of await a.requestMany(`$SRV.PING.${name}`, undefined, {
      strategy: 'stall',
      stall: 200,
      maxWait: 5_000,
    }))
      ids.push((JSON.parse(dec.decode(m.data)) as { id: string }).id);
    expect(ids.sort()).toEqual(['replica-a', 'replica-b']);
    expect(refusals.get(a)).toEqual([]);
    await expectPublishRefused(a, `$SRV.PING.${microServiceName(NS, 'authz')}`);
    await expectPublishRefused(a, `$SRV.INFO.${name}`);
    await expectPublishRefused(a, '$SRV.PING');
  });

  test("a replica cannot call another service's function directly", async () => {
    const authz = await as(AUTHZ);
    const authzCalls = serveCalls(authz, AUTHZ as MeshIdentity & { kind: 'replica' }, '"authz"');
    await authz.flush();
    const greeter = await as(GREETER);
    await expectPublishRefused(greeter, callSubject(NS, 'authz', 'canGreet'), `${inboxPrefix(GREETER)}.x`);
    // the gateway's call, published after the refused one, is the only one authz sees
    const gateway = await as(GATEWAY_IDENTITY);
    await gateway.request(callSubject(NS, 'authz', 'canGreet'), enc.encode('{}'), { timeout: 5_000 });
    expect(authzCalls.map((m) => m.reply?.startsWith(inboxPrefix(GATEWAY_IDENTITY)))).toEqual([true]);
  });

  test("a replica cannot call its own service's functions directly either (only the gateway publishes calls)", async () => {
    const greeter = await as(GREETER);
    await expectPublishRefused(greeter, callSubject(NS, 'greeter', 'admin'));
  });

  test("a replica cannot publish on another service's fnmesh.gw subject (forging the caller)", async () => {
    const gateway = await as(GATEWAY_IDENTITY);
    const seen: string[] = [];
    gateway.subscribe(INTERNAL_WILDCARD, {
      queue: GATEWAY_QUEUE_GROUP,
      callback: (_e, m) => {
        seen.push(m.subject);
      },
    });
    await gateway.flush();
    const greeter = await as(GREETER);
    const forged = internalCallSubject(
      { namespace: NS, service: 'authz' },
      { namespace: NS, service: 'greeter', function: 'admin' },
    );
    await expectPublishRefused(greeter, forged);
    const own = internalCallSubject(
      { namespace: NS, service: 'greeter' },
      { namespace: NS, service: 'authz', function: 'canGreet' },
    );
    greeter.publish(own);
    await waitFor(() => seen.length > 0, { what: 'the gateway to get the legitimate internal call' });
    expect(seen).toEqual([own]);
  });

  test.each([
    ['every call', 'fnmesh.call.>'],
    ['every internal call', 'fnmesh.gw.>'],
    ["another service's calls", serviceCallWildcard(NS, 'authz')],
    ['every inbox', '_INBOX.>'],
    ["the gateway's inbox", `${inboxPrefix(GATEWAY_IDENTITY)}.>`],
    ["another service's inbox", `${inboxPrefix(AUTHZ)}.>`],
    ['every fnmesh inbox', '_INBOX.fnmesh.>'],
    ['everything', '>'],
  ])('a replica cannot subscribe to %s (%s)', async (_what, subject) => {
    const greeter = await as(GREETER);
    await expectSubscribeRefused(greeter, subject);
  });

  test("a replica cannot join another service's queue group", async () => {
    const greeter = await as(GREETER);
    await expectSubscribeRefused(greeter, serviceCallWildcard(NS, 'authz'), serviceQueueGroup(NS, 'authz'));
    // nor take another group's name on its own subject, nor listen to its own calls outside its group
    await expectSubscribeRefused(greeter, serviceCallWildcard(NS, 'greeter'), serviceQueueGroup(NS, 'authz'));
    await expectSubscribeRefused(greeter, serviceCallWildcard(NS, 'greeter'));
  });

  test("a replica cannot join the gateways' queue group for internal calls", async () => {
    const greeter = await as(GREETER);
    await expectSubscribeRefused(greeter, INTERNAL_WILDCARD, GATEWAY_QUEUE_GROUP);
  });

  test('a replica cannot reply as another service (to a reply subject it did not receive)', async () => {
    const gateway = await as(GATEWAY_IDENTITY);
    const authz = await as(AUTHZ);
    let replySubject: string | undefined;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    authz.subscribe(serviceCallWildcard(NS, 'authz'), {
      queue: serviceQueueGroup(NS, 'authz'),
      callback: (_e, msg) => {
        replySubject = msg.reply;
        void held.then(() => msg.respond(enc.encode('"the real authz"')));
      },
    });
    await authz.flush();
    const answer = gateway.request(callSubject(NS, 'authz', 'canGreet'), enc.encode('{}'), { timeout: 10_000 });
    await waitFor(() => replySubject, { what: 'authz to receive the call' });
    // the attacker knows the reply subject (worst case) and answers first
    const greeter = await as(GREETER);
    await expectPublishRefused(greeter, replySubject!);
    release();
    expect(dec.decode((await answer).data)).toBe('"the real authz"');
  });

  test("the gateway cannot publish on a service's fnmesh.gw subject, nor subscribe to calls", async () => {
    const gateway = await as(GATEWAY_IDENTITY);
    await expectPublishRefused(
      gateway,
      internalCallSubject({ namespace: NS, service: 'greeter' }, { ...AUTHZ_ADDRESS, function: 'x' }),
    );
    await expectSubscribeRefused(gateway, 'fnmesh.call.>');
    await expectSubscribeRefused(gateway, `${inboxPrefix(GREETER)}.>`);
  });

  test('an observer can only ask for discovery', async () => {
    const observer = await as({ kind: 'observer' });
    await expectPublishRefused(observer, callSubject(NS, 'greeter', 'hello'));
    await expectSubscribeRefused(observer, '$SRV.>');
  });
});
