/**
 * `fnmesh local`'s settings: the gateway's (it runs one in-process), without those of other rule sources
 * and of a separate ops port, listening on loopback and allowing pages on any local port by default, plus
 * its own. Light: the CLI imports it.
 */
import { setting, variant } from '../common/config';
import * as parsers from '../common/parsers';
import { GATEWAY_SETTINGS } from '../gateway/settings';
import { DEV_CORS_ORIGINS } from './dev-origins';

// Not offered: the local mesh takes its rules from its manifest arguments, and serves ops on the call API.
const {
  listen,
  manifests: _manifests,
  opsListen: _opsListen,
  ruleSource: _ruleSource,
  kubeconfig: _kubeconfig,
  watchNamespace: _watchNamespace,
  ...gateway
} = GATEWAY_SETTINGS;

export const LOCAL_SETTINGS = {
  listen: variant(listen, { default: '127.0.0.1:8080' }),
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
