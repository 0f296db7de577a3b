/**
 * The operator process: config → logger (JSON, component operator) → API server access (FNMESH_KUBECONFIG,
 * KUBECONFIG, ~/.kube/config or the pod's service account: common/kubeconfig.ts's `loadKubeAccess`, which
 * loads @kubernetes/client-node only for what it does not read itself, such as exec plugins)
 * → operator → graceful stop on SIGTERM/SIGINT (drain the workers, release the lease, stop
 * the informers), run by runMain. Losing the lease exits the process (status 1), as controller-runtime does:
 * a replica that may have missed events must not keep reconciling. A ConfigError prints its message to
 * stderr and exits with status 2.
 */
import { loadKubeAccess } from '../common/kubeconfig';
import { createLogger } from '../common/logger';
import { runMain } from '../common/run-main';
import { loadOperatorConfig } from './config';
import { startOperator, type Operator } from './operator';

export function main(env: Record<string, string | undefined> = process.env): Promise<Operator> {
  return runMain('fnmesh operator', async (run) => {
    const config = loadOperatorConfig(env);
    const logger = run.useLogger(createLogger({ level: config.logLevel, defaultMeta: { component: 'operator' } }));
    const kubeAccess = loadKubeAccess({
      env,
      logger,
      ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
    });
    return startOperator({
      config,
      kubeAccess,
      logger,
      ...(env.POD_NAME ? { identity: env.POD_NAME } : {}),
      onLostLeadership: () => process.exit(1),
    });
  });
}

if (require.main === module) void main();
