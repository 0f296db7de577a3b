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
  readyTimeoutMs: setting({
    env: 'FNMESH_LOCAL_READY_TIMEOUT_MS',
    flag: '--ready-timeout-ms <ms>',
    default: '25000',
    parse: parsers.wholeNumber({ min: 0, max: 3_600_000 }),
    help: 'print the summary after this long even if a replica is not ready',
  }),
};
