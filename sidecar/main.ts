/** The sidecar process: env → config → logger → sidecar; SIGTERM/SIGINT → graceful stop → exit 0. */
import { ConfigError, createLogger, errorMessage } from './common';
import { loadSidecarConfig } from './config';
import { startSidecar } from './sidecar';

export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  let config;
  try {
    config = loadSidecarConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`fnmesh sidecar: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({
    level: config.logLevel,
    defaultMeta: { component: 'sidecar', service: `${config.namespace}/${config.service}`, replica: config.replicaId },
  });
  let sidecar;
  try {
    sidecar = await startSidecar(config, { logger });
  } catch (err) {
    logger.error('sidecar failed to start', { error: errorMessage(err) });
    process.exit(1);
  }
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    signalled = true;
    logger.info('signal received; stopping gracefully', { signal });
    sidecar.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('graceful stop failed', { error: errorMessage(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`fnmesh sidecar: ${errorMessage(err)}`);
    process.exit(1);
  });
}
