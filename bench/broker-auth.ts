/**
 * `npm run bench:broker-auth`: what JWT authentication and permissions cost in the embedded broker.
 * A request/reply echo through the broker, once with no auth and once with operator-mode JWT users whose
 * permissions are those of the mesh (the requester: publish `bench.>`, subscribe `_INBOX.>`; the replier:
 * subscribe `bench.echo` in queue `bench` only, publish nothing but replies, allow_responses). Runs
 * alternate (off then on, on then off, ...) and prints p50/p99 at a fixed rate, the closed-loop throughput and the CPU
 * time per request of each.
 */
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  type KeyPair,
  type User,
} from '@nats-io/jwt';
import { connect } from '@nats-io/transport-node';
import { jwtAuthenticator, type NatsConnection } from '@nats-io/nats-core';
import { startBroker, type BrokerOptions } from '../broker';
import { closedLoop, openLoop } from './load';

const RATE = Number(process.env.BENCH_RATE ?? 2000);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_SECONDS ?? 5) * 1000;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 5) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const UNLIMITED = { conn: -1, subs: -1, data: -1, payload: -1 };

interface Setup {
  broker: BrokerOptions;
  requester?: { jwt: string; key: KeyPair };
  replier?: { jwt: string; key: KeyPair };
}

async function jwtSetup(): Promise<Setup> {
  const operator = createOperator();
  const account = createAccount();
  const signer = createAccount();
  const accountJwt = await encodeAccount(
    'bench',
    account,
    { limits: UNLIMITED, signing_keys: [signer.getPublicKey()] },
    { signer: operator },
  );
  const user = async (perms: Partial<User>): Promise<{ jwt: string; key: KeyPair }> => {
    const key = createUser();
    return { key, jwt: await encodeUser('u', key, account, perms, { signer }) };
  };
  return {
    broker: { jwt: { operators: [await encodeOperator('op', operator)], accounts: [accountJwt] } },
    requester: await user({ pub: { allow: ['bench.>'] }, sub: { allow: ['_INBOX.>'] } }),
    replier: await user({ sub: { allow: ['bench.echo bench'] }, resp: { max: 1, ttl: 60_000_000_000 } }),
  };
}

async function client(url: string, creds: { jwt: string; key: KeyPair } | undefined): Promise<NatsConnection> {
  return connect({
    servers: url,
    ...(creds ? { authenticator: jwtAuthenticator(creds.jwt, creds.key.getSeed()) } : {}),
  });
}

async function run(label: string, setup: Setup): Promise<string> {
  const broker = await startBroker(setup.broker);
  const replier = await client(broker.url, setup.replier);
  replier.subscribe('bench.echo', { queue: 'bench', callback: (_e, m) => void m.respond(m.data) });
  await replier.flush();
  const requester = await client(broker.url, setup.requester);
  const body = new TextEncoder().encode(JSON.stringify({ message: 'hello', n: 42 }));
  const send = async (): Promise<void> => void (await requester.request('bench.echo', body, { timeout: 5000 }));
  await closedLoop(send, CONCURRENCY, 1000); // warm-up
  const lat = await openLoop(send, RATE, LATENCY_MS);
  const cpu0 = process.cpuUsage();
  const thr = await closedLoop(send, CONCURRENCY, THROUGHPUT_MS);
  const cpu = process.cpuUsage(cpu0);
  // CPU per request (broker and both clients, all in this process): steadier than wall time on a busy machine
  const cpuUs = (cpu.user + cpu.system) / (thr.rate * (THROUGHPUT_MS / 1000));
  await requester.close();
  await replier.close();
  await broker.close();
  const f = (n: number): string => n.toFixed(3);
  return `| ${label} | ${f(lat.p50)} | ${f(lat.p99)} | ${thr.rate.toFixed(0)} | ${cpuUs.toFixed(1)} | ${thr.errors} |`;
}

async function main(): Promise<void> {
  const secured = await jwtSetup();
  const rows: string[] = [];
  const off = (): Promise<string> => run('auth off', { broker: {} });
  const on = (): Promise<string> => run('JWT auth + permissions', secured);
  // alternate which goes first, so that neither always runs on a warmer (or more fragmented) process
  for (let i = 0; i < ROUNDS; i++) {
    if (i % 2 === 0) rows.push(await off(), await on());
    else rows.push(await on(), await off());
  }
  console.log(
    `request/reply through the embedded broker; ${RATE}/s for latency, ${CONCURRENCY} in flight for throughput\n`,
  );
  console.log('| broker | p50 ms | p99 ms | req/s | CPU µs/req | errors |\n| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
}

main().catch((err: unknown) => {
  console.error(`bench:broker-auth: ${String(err)}`);
  process.exit(1);
});
