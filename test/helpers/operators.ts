/**
 * Operators run in the test process against a test control plane: one configuration base (fast leader
 * election, loopback ops port), started and stopped through an `OperatorSet` that stops whatever is left
 * in `afterAll`.
 */
import type { KubeAccess } from '../../common/kube-access';
import { loadKubeAccess } from '../../common/kubeconfig';
import { silentLogger, type Logger } from '../../common/logger';
import { loadOperatorConfig, type OperatorConfig } from '../../operator/config';
import { startOperator, type Operator } from '../../operator';
import type { ControlPlane } from './control-plane';
import { waitFor } from './wait';

export const LEASE_NS = 'fnmesh-system';
export const SIDECAR_IMAGE = 'ghcr.io/fnmesh/fnmesh:test';
export const NATS_URL = 'nats://nats.fnmesh-system:4222';
/** A 3 s lease, 2 s renew deadline, 0.5 s retry: fail-over within seconds. */
export const LEASE_ENV = {
  FNMESH_LEASE_DURATION_MS: '3000',
  FNMESH_RENEW_DEADLINE_MS: '2000',
  FNMESH_RETRY_PERIOD_MS: '500',
};

/**
 * The tests' operator configuration: LEASE_ENV's lease, no NATS credentials (test/operator-nats-creds.test.ts
 * turns them on with FNMESH_NATS_AUTH=jwt), plus `env`.
 */
export function testOperatorConfig(env: Record<string, string> = {}): OperatorConfig {
  return loadOperatorConfig({
    FNMESH_SIDECAR_IMAGE: SIDECAR_IMAGE,
    FNMESH_SIDECAR_NATS_URL: NATS_URL,
    FNMESH_OPERATOR_LISTEN: '127.0.0.1:0',
    FNMESH_LEASE_NAMESPACE: LEASE_NS,
    FNMESH_NATS_AUTH: 'none',
    ...LEASE_ENV,
    ...env,
  });
}

/** The control plane's admin access, through the operator's own loader (as FNMESH_KUBECONFIG names it). */
export function adminKubeAccess(cp: Pick<ControlPlane, 'kubeconfig'>): KubeAccess {
  return loadKubeAccess({ kubeconfig: cp.kubeconfig, env: {} });
}

export interface RunOptions {
  identity: string;
  config: OperatorConfig;
  /** Default: the control plane's admin. */
  kubeAccess?: KubeAccess;
  logger?: Logger;
  serveOps?: boolean;
  onLostLeadership?: () => void;
  /** Resolve only once it leads with synced caches (default false). */
  waitLeading?: boolean;
}

export class OperatorSet {
  readonly running: Operator[] = [];

  constructor(private readonly cp: () => Pick<ControlPlane, 'kubeconfig'>) {}

  async start(o: RunOptions): Promise<Operator> {
    const op = await startOperator({
      config: o.config,
      kubeAccess: o.kubeAccess ?? adminKubeAccess(this.cp()),
      logger: o.logger ?? silentLogger,
      identity: o.identity,
      ...(o.serveOps === undefined ? {} : { serveOps: o.serveOps }),
      onLostLeadership: o.onLostLeadership ?? (() => undefined),
    });
    this.running.push(op);
    if (o.waitLeading)
      await waitFor(() => op.isLeader() && op.synced(), {
        timeoutMs: 20_000,
        what: `operator ${o.identity} to lead with synced caches`,
      });
    return op;
  }

  async stop(op: Operator): Promise<void> {
    await op.stop();
    const i = this.running.indexOf(op);
    if (i >= 0) this.running.splice(i, 1);
  }

  /** Stops every operator still running, the newest first. */
  async stopAll(): Promise<void> {
    for (const op of [...this.running].reverse()) await this.stop(op);
  }
}
