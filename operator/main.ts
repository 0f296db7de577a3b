/**
 * The operator process: config → logger (JSON, component operator) → API server access (FNMESH_KUBECONFIG,
 * KUBECONFIG, ~/.kube/config or the pod's service account: common/kubeconfig.ts's `loadKubeAccess`, which
 * loads @kubernetes/client-node only for what it does not read itself, such as exec plugins)
 * → operator → graceful stop on SIGTERM/SIGINT (drain the workers, release the lease, stop
 * the informers). Losing the lease exits the process (status 1), as controller-runtime does: a replica
 * that may have missed events must not keep reconciling. A ConfigError prints its message to stderr and
 * exits with status 2.
 */
import { ConfigError, errorMessage } from '../common/errors';
import { loadKubeAccess } from '../common/kubeconfig';
import { createLogger } from '../common/logger';
import { loadOperatorConfig } from './config';
import { startOperator, type Operator } from './operator';

export async function main(env: Record<string, string | undefined> = process.env): Promise<Operator | undefined> {
  try {
    const config = loadOperatorConfig(env);
    const logger = createLogger({ level: config.logLevel, defaultMeta: { component: 'operator' } });
    const kubeAccess = loadKubeAccess({
      env,
      logger,
      ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
    });
    const operator = await startOperator({
      config,
      kubeAccess,
      logger,
      ...(env.POD_NAME ? { identity: env.POD_NAME } : {}),
      onLostLeadership: () => process.exit(1),
    });
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info('signal received; stopping', { signal });
      operator.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error('the operator did not stop cleanly', { error: errorMessage(err) });
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    return operator;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`fnmesh operator: ${err.message}`);
      process.exit(2);
    }
    console.error(`fnmesh operator: cannot start: ${errorMessage(err)}`);
    process.exit(1);
  }
}

if (require.main === module) void main();
