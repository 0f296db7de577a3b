/**
 * The gateway process: config → logger → rule source → startGateway → graceful stop on SIGTERM/SIGINT.
 * A ConfigError prints its message (no stack) to stderr and exits with status 2.
 */
import { ConfigError, createLogger, errorMessage } from '../common';
import { ManifestFileSource, StaticRuleSource, type RuleSource } from '../common/manifest-source';
import { loadGatewayConfig } from './config';
import { startGateway, type Gateway } from './gateway';

export async function main(env: Record<string, string | undefined> = process.env): Promise<Gateway | undefined> {
  let gateway: Gateway;
  try {
    const config = loadGatewayConfig(env);
    const logger = createLogger({ level: config.logLevel, defaultMeta: { component: 'gateway' } });
    const ruleSource: RuleSource =
      config.manifests.length > 0 ? new ManifestFileSource(config.manifests, { logger: logger.child({ part: 'manifests' }) }) : new StaticRuleSource([]);
    if (config.manifests.length === 0) logger.warn('FNMESH_MANIFESTS is not set: no services are routed');
    gateway = await startGateway(config, { logger, ruleSource });
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info('signal received; stopping', { signal });
      gateway.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error('the gateway did not stop cleanly', { error: errorMessage(err) });
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    return gateway;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`fnmesh gateway: ${err.message}`);
      process.exit(2);
    }
    console.error(`fnmesh gateway: cannot start: ${errorMessage(err)}`);
    process.exit(1);
  }
}

if (require.main === module) void main();
