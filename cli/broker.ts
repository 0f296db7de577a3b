/** `fnmesh broker`: the embedded NATS-protocol broker on its own, until SIGINT/SIGTERM. */
import { ConfigError, createLogger, errorMessage, readInt, readLogLevel } from '../common';
import { startBroker } from '../broker';
import type { CliIo } from './main';

export async function runBroker(opts: { host: string; port: string; token?: string }, io: CliIo): Promise<void> {
  const port = readInt({ '--port': opts.port }, '--port', 4222, { min: 0, max: 65535 });
  if (opts.host.trim() === '')
    throw new ConfigError('--host must not be empty: give an address such as 127.0.0.1 or 0.0.0.0');
  const logger = createLogger({ level: readLogLevel(io.env), defaultMeta: { component: 'broker' } });
  const broker = await startBroker({ host: opts.host, port, logger, ...(opts.token ? { token: opts.token } : {}) });
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info('signal received; stopping', { signal });
    broker.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('stopping failed', { error: errorMessage(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
