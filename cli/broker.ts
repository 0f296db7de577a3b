/** `fnmesh broker`: the embedded NATS-protocol broker on its own (its settings: broker/settings.ts), until SIGINT/SIGTERM. */
import { createLogger } from '../common/logger';
import { readSettings, type Env } from '../common/config';
import { runMain } from '../common/run-main';
import { loadBrokerSecurity, startBroker, type Broker } from '../broker';
import { BROKER_SETTINGS } from '../broker/settings';

export function runBroker(env: Env): Promise<{ stop(): Promise<void> }> {
  return runMain('fnmesh broker', async (run) => {
    const s = readSettings(env, BROKER_SETTINGS);
    const logger = run.useLogger(createLogger({ level: s.logLevel, defaultMeta: { component: 'broker' } }));
    const broker: Broker = await startBroker({
      host: s.host,
      port: s.port,
      logger,
      ...(s.token ? { token: s.token } : {}),
      ...loadBrokerSecurity(s),
    });
    return { stop: () => broker.close() };
  });
}
