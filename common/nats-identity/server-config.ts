/**
 * nats-server's configuration for the mesh's trust chain (operator mode): the operator JWT, the system account,
 * and the MEMORY resolver with the mesh account and the system account preloaded. With an operator configured,
 * nats-server accepts only users whose JWT an account of that operator signed, so an unauthenticated client is
 * refused; JetStream starts only with a system account. nats-server reads this at start only (a changed
 * account JWT needs a restart). Used by the tests' nats-server, and by the chart and the docs for a NATS the
 * user runs.
 */
import type { RevocationList } from '@nats-io/jwt';
import { meshAccountJwts, operatorJwt, type MeshTrust } from './trust-chain';

export interface OperatorModeConfig {
  operatorJwt: string;
  /** The accounts to preload: public key → account JWT. */
  accounts: Record<string, string>;
  /** The system account's public key, when one of the accounts is it. */
  systemAccount?: string;
}

/** The config text (a fragment of nats-server.conf: add `listen`, TLS and the rest around it). */
export function operatorModeConfig(config: OperatorModeConfig): string {
  const lines = [`operator: ${JSON.stringify(config.operatorJwt)}`];
  if (config.systemAccount) lines.push(`system_account: ${JSON.stringify(config.systemAccount)}`);
  lines.push('resolver: MEMORY', 'resolver_preload: {');
  for (const [publicKey, jwt] of Object.entries(config.accounts)) {
    lines.push(`  ${JSON.stringify(publicKey)}: ${JSON.stringify(jwt)}`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** The mesh's fragment for `trust`: its operator, its system account, both accounts preloaded. */
export async function meshOperatorModeConfig(trust: MeshTrust, revocations: RevocationList = {}): Promise<string> {
  return operatorModeConfig({
    operatorJwt: await operatorJwt(trust),
    systemAccount: trust.systemAccount.getPublicKey(),
    accounts: await meshAccountJwts(trust, revocations),
  });
}
