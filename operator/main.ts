/**
 * The operator process: config → logger (JSON, component operator) → API server access (KUBECONFIG,
 * ~/.kube/config or the pod's service account, read by common/kubeconfig.ts without loading
 * @kubernetes/client-node; client-node's KubeConfig for what that does not cover, such as exec plugins)
 * → operator → graceful stop on SIGTERM/SIGINT (drain the workers, release the lease, stop
 * the informers). Losing the lease exits the process (status 1), as controller-runtime does: a replica
 * that may have missed events must not keep reconciling. A ConfigError prints its message to stderr and
 * exits with status 2.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../common/errors';
import { accessFromKubeConfig, type KubeAccess } from '../common/kube-access';
import { accessFromSpec, findAccessSpec } from '../common/kubeconfig';
import { createLogger, type Logger } from '../common/logger';
import { loadOperatorConfig } from './config';
import { startOperator, type Operator } from './operator';

export async function main(env: Record<string, string | undefined> = process.env): Promise<Operator | undefined> {
  try {
    const config = loadOperatorConfig(env);
    const logger = createLogger({ level: config.logLevel, defaultMeta: { component: 'operator' } });
    const kubeAccess = loadAccess(env, logger);
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

/** KUBECONFIG when set (or ~/.kube/config), else the in-cluster service account. */
function loadAccess(env: Record<string, string | undefined>, logger: Logger): KubeAccess {
  const found = findAccessSpec(env);
  if (found.kind === 'spec') {
    logger.debug('API server access', { server: found.spec.server, from: found.source });
    return accessFromSpec(found.spec);
  }
  // What the small loader does not cover: client-node's KubeConfig (loaded only now).
  logger.debug('API server access through client-node', { why: found.reason });
  const { KubeConfig: ClientNodeKubeConfig } =
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@kubernetes/client-node') as typeof import('@kubernetes/client-node');
  const kubeConfig: KubeConfig = new ClientNodeKubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (err) {
    throw new ConfigError(`cannot load the kubeconfig (KUBECONFIG="${env.KUBECONFIG ?? ''}"): ${errorMessage(err)}`);
  }
  if (!kubeConfig.getCurrentCluster())
    throw new ConfigError('no Kubernetes cluster configured: set KUBECONFIG or run in a pod with a service account');
  return accessFromKubeConfig(kubeConfig);
}

if (require.main === module) void main();
