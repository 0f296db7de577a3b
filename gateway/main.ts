/**
 * The gateway process: config → logger → rule source → startGateway, run by runMain (graceful stop on
 * SIGTERM/SIGINT; a bad setting prints its message, no stack, and exits with status 2).
 */
import { createLogger, type Logger } from '../common';
import { KUBECONFIG_VAR } from '../common/kube-access';
import { runMain } from '../common/run-main';
import { ManifestFileSource, StaticRuleSource, type RuleSource } from '../common/manifest-source';
import { loadGatewayConfig, type GatewayConfig } from './config';
import { startGateway, type Gateway } from './gateway';

/** The rule source the configuration chooses: FunctionService objects in Kubernetes, manifest files, or none. */
export async function buildRuleSource(
  config: GatewayConfig,
  logger: Logger,
  env: Record<string, string | undefined> = process.env,
): Promise<RuleSource> {
  if (config.ruleSource === 'kubernetes') {
    // Loaded only when used: the file source needs neither the Kubernetes client nor the kubeconfig reader.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { KubernetesRuleSource } = require('./kube-rule-source') as typeof import('./kube-rule-source');
    const { loadKubeAccess } = require('../common/kubeconfig') as typeof import('../common/kubeconfig');
    /* eslint-enable @typescript-eslint/no-require-imports */
    return new KubernetesRuleSource({
      kubeAccess: loadKubeAccess({
        env,
        logger,
        ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
      }),
      ...(config.watchNamespace ? { namespace: config.watchNamespace } : {}),
      logger: logger.child({ part: 'kubernetes-rules' }),
    });
  }
  for (const name of [KUBECONFIG_VAR, 'FNMESH_WATCH_NAMESPACE']) {
    if (env[name])
      logger.warn(`${name} is ignored: the rule source is files (set FNMESH_RULE_SOURCE=kubernetes to use it)`);
  }
  if (config.manifests.length === 0) {
    logger.warn('FNMESH_MANIFESTS is not set: no services are routed (or set FNMESH_RULE_SOURCE=kubernetes)');
    return new StaticRuleSource([]);
  }
  return new ManifestFileSource(config.manifests, { logger: logger.child({ part: 'manifests' }) });
}

export function main(env: Record<string, string | undefined> = process.env): Promise<Gateway> {
  return runMain('fnmesh gateway', async (run) => {
    const config = loadGatewayConfig(env);
    const logger = run.useLogger(createLogger({ level: config.logLevel, defaultMeta: { component: 'gateway' } }));
    const ruleSource = await buildRuleSource(config, logger, env);
    return startGateway(config, { logger, ruleSource });
  });
}

if (require.main === module) void main();
