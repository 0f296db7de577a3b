/** The bare NATS floor: a plain NATS responder that echoes each request, in its own process. */
import { connect } from '@nats-io/transport-node';

async function main(): Promise<void> {
  const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const nc = await connect({ servers: url, maxReconnectAttempts: 0 });
  // the broker going away at the end of a run ends this process quietly
  void nc.closed().then(() => process.exit(0));
  nc.subscribe('bench.echo', { queue: 'bench', callback: (_err, msg) => void msg.respond(msg.data) });
  await nc.flush();
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void nc.drain().then(() => process.exit(0)));
}
main().catch((err: unknown) => {
  console.error(`nats-responder: ${String(err)}`);
  process.exit(1);
});
