/**
 * `fnmesh local`'s settings: the gateway's (it runs one in-process), without those of other rule sources,
 * listening on loopback (the call API and the ops listener) and allowing pages on any local port by default,
 * plus its own. Light: the CLI imports it.
 */
import { setting, variant } from '../common/config';
import * as parsers from '../common/parsers';
import { DEFAULT_GATEWAY_OPS_PORT, GATEWAY_SETTINGS } from '../gateway/settings';
import { DEV_CORS_ORIGINS } from './dev-origins';

// Not offered: the local mesh takes its rules from its manifest arguments.
const {
  listen,
  opsListen,
  manifests: _manifests,
  ruleSource: _ruleSource,
  kubeconfig: _kubeconfig,
  watchNamespace: _watchNamespace,
  // Not offered either: the local mesh mints every part's NATS user and its broker's trust itself
  // (local/nats-setup.ts refuses them when set).
  natsToken: _natsToken,
  natsCreds: _natsCreds,
  brokerOperator: _brokerOperator,
  brokerAccounts: _brokerAccounts,
  ...gateway
} = GATEWAY_SETTINGS;

export const LOCAL_SETTINGS = {
  listen: variant(listen, { default: '127.0.0.1:8080' }),
  opsListen: variant(opsListen, { default: `127.0.0.1:${DEFAULT_GATEWAY_OPS_PORT}` }),
  ...gateway,
  corsOrigins: variant(gateway.corsOrigins, {
    default: DEV_CORS_ORIGINS,
    help: `${gateway.corsOrigins.help}; an empty value allows none`,
  }),
  natsTrustDir: setting({
    env: 'FNMESH_LOCAL_NATS_TRUST_DIR',
    flag: '--nats-trust-dir <dir>',
    unset: 'a fresh trust chain for each run (embedded broker only)',
    parse: parsers.text,
    help: "directory of the NATS trust chain (operator.nk, account.nk, signing-key.nk) every part's NATS user is minted from; created with fresh keys and a `nats-server.conf` to include in your NATS server when empty; required with FNMESH_NATS_URL",
  }),
  readyTimeoutMs: setting({
    env: 'FNMESH_LOCAL_READY_TIMEOUT_MS',
    flag: '--ready-timeout-ms <ms>',
    default: '25000',
    parse: parsers.wholeNumber({ min: 0, max: 3_600_000 }),
    help: 'print the summary after this long even if a replica is not ready',
  }),
};
