/**
 * Installs the FunctionService CRD (`kubectl apply -f crds/`) on a test control plane and waits until the
 * API server reports it Established. Polls the CRD's status instead of `kubectl wait`, which fails at once
 * ("accessor error: <nil>") when it looks before the API server has written any condition.
 */
import path from 'node:path';
import { CRD_NAME } from '../../common/crd-names';
import type { ControlPlane } from './control-plane';
import { waitFor } from './wait';

export const CRDS_DIR = path.resolve(__dirname, '..', '..', 'crds');

export async function installCrds(cp: Pick<ControlPlane, 'kubectl'>, timeoutMs = 60_000): Promise<void> {
  const applied = await cp.kubectl(['apply', '-f', CRDS_DIR]);
  if (applied.code !== 0) throw new Error(`kubectl apply -f crds/ failed: ${applied.stderr}`);
  await waitFor(
    async () => {
      const got = await cp.kubectl(['get', `crd/${CRD_NAME}`, '-o', 'json']);
      if (got.code !== 0) return false;
      const crd = JSON.parse(got.stdout) as { status?: { conditions?: { type: string; status: string }[] } };
      return (crd.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True');
    },
    { timeoutMs, intervalMs: 50, what: 'the FunctionService CRD to become Established' },
  );
}
