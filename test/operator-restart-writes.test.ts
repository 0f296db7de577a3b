/**
 * A restarted operator (existing, Ready FunctionServices and Deployments) makes no Deployment writes at
 * steady state: its Deployment cache is filled by the informer's initial LIST, not by watch events, and
 * the drift check must see those objects exactly as it sees watched ones.
 */
import { silentLogger, type Logger } from '../common/logger';
import type { Operator } from '../operator';
import { OperatorSet, testOperatorConfig } from './helpers/operators';
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { installCrds } from './helpers/crds';
import { waitFor } from './helpers/wait';

jest.setTimeout(180_000);

const NS = 'default';
const RESYNC_MS = 500;
const NAMES = ['restart-a', 'restart-b'];

let cp: ControlPlane;
const operators = new OperatorSet(() => cp);

/** Keeps the drift paths of every apply the operator logs. */
function driftLogger(into: string[][]): Logger {
  const log: Logger = {
    debug: () => undefined,
    info: (message, meta) => {
      if (message.includes('applying') && Array.isArray(meta?.drift)) into.push(meta.drift as string[]);
    },
    warn: () => undefined,
    error: () => undefined,
    child: () => log,
  };
  return log;
}

function runOperator(identity: string, logger: Logger = silentLogger): Promise<Operator> {
  const config = testOperatorConfig({
    FNMESH_LEADER_ELECT: 'false',
    FNMESH_RESYNC_MS: String(RESYNC_MS),
    FNMESH_CONCURRENT_RECONCILES: '2',
  });
  return operators.start({ config, logger, identity, serveOps: false, waitLeading: true });
}

async function waitReady(name: string): Promise<void> {
  await waitFor(
    async () => {
      const r = await cp.request(`/apis/fnmesh.io/v1alpha1/namespaces/${NS}/functionservices/${name}`);
      const fs = r.body as {
        metadata: { generation: number };
        status?: {
          observedGeneration?: number;
          readyReplicas?: number;
          conditions?: Array<{ type: string; status: string }>;
        };
      };
      const ready = fs.status?.conditions?.find((c) => c.type === 'Ready');
      return (
        r.status === 200 &&
        ready?.status === 'True' &&
        fs.status?.readyReplicas === 1 &&
        fs.status.observedGeneration === fs.metadata.generation
      );
    },
    { timeoutMs: 30_000, what: `FunctionService ${name} Ready` },
  );
}

beforeAll(async () => {
  cp = await startControlPlane();
  await installCrds(cp);
}, 300_000);

afterAll(async () => {
  await operators.stopAll();
  await cp?.stop();
});

test('after a restart, the operator makes no Deployment writes across resyncs', async () => {
  const first = await runOperator('first');
  for (const name of NAMES) {
    const body = {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name, namespace: NS },
      spec: {
        replicas: 1,
        functions: [{ name: 'hello', rule: { rule: 'allow' } }],
        container: { image: 'example.com/fn:1' },
      },
    };
    const r = await cp.request(`/apis/fnmesh.io/v1alpha1/namespaces/${NS}/functionservices`, { method: 'POST', body });
    if (r.status !== 201) throw new Error(`creating ${name}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  }
  for (const name of NAMES) await waitReady(name);
  await operators.stop(first);

  const drifts: string[][] = [];
  const second = await runOperator('second', driftLogger(drifts));
  const isDeployment = (r: { resource: string }): boolean => r.resource === 'deployments';
  await waitFor(() => second.reconcileCount() >= 4 * NAMES.length, {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: 'several resyncs',
  });
  const writes = second.writes(isDeployment);
  console.error(
    `restarted operator: ${second.reconcileCount()} reconciles, ${writes.length} Deployment writes; drift seen: ${JSON.stringify(drifts.slice(0, 4))}`,
  );
  expect(drifts).toEqual([]);
  expect(writes).toEqual([]);
});
