/** The sidecar process: env → config → logger → sidecar, run by runMain (SIGTERM/SIGINT → graceful stop → exit 0). */
import { createLogger } from './common';
import { runMain } from '../common/run-main';
import { loadSidecarConfig } from './config';
import { startSidecar, type Sidecar } from './sidecar';

export function main(env: Record<string, string | undefined> = process.env): Promise<Sidecar> {
  return runMain('fnmesh sidecar', async (run) => {
    const config = loadSidecarConfig(env);
    const logger = run.useLogger(
      createLogger({
        level: config.logLevel,
        defaultMeta: {
          component: 'sidecar',
          service: `${config.namespace}/${config.service}`,
          replica: config.replicaId,
        },
      }),
    );
    return startSidecar(config, { logger });
  });
}

if (require.main === module) void main();
