/**
 * `fnmesh cluster`'s settings: what it passes on to the gateway it runs, and the log level of everything it
 * starts. Light: the CLI imports it.
 */
import { logLevelSetting, setting, variant } from '../common/config';
import * as parsers from '../common/parsers';
import { DEFAULT_GATEWAY_OPS_PORT, GATEWAY_SETTINGS } from '../gateway/settings';

export const CLUSTER_SETTINGS = {
  listen: variant(GATEWAY_SETTINGS.listen, {
    default: '127.0.0.1:8080',
    help: "the gateway's HTTP call API address",
  }),
  opsListen: variant(GATEWAY_SETTINGS.opsListen, {
    default: `127.0.0.1:${DEFAULT_GATEWAY_OPS_PORT}`,
    help: "the gateway's ops listener: `/metrics`, `GET /v1/services` (every rule with its definition), `/healthz`, `/readyz`",
  }),
  brokerPort: variant(GATEWAY_SETTINGS.brokerPort, {
    help: "the gateway's embedded broker port (the pods reach it as 127.0.0.1:4222); 0 picks a free one",
  }),
  jwtSecret: variant(GATEWAY_SETTINGS.jwtSecret, {
    unset: 'one per run, with a signed-in curl printed',
    help: "the gateway's HS256 secrets, comma-separated",
  }),
  natsUrl: variant(GATEWAY_SETTINGS.natsUrl, {
    help: "a NATS server of yours instead of the gateway's embedded broker: one nats://host:port, relayed to 127.0.0.1:4222 in every pod; needs FNMESH_CLUSTER_NATS_TRUST_DIR",
  }),
  natsTrustDir: setting({
    env: 'FNMESH_CLUSTER_NATS_TRUST_DIR',
    flag: '--nats-trust-dir <dir>',
    unset: 'a fresh trust chain for each run (embedded broker only)',
    parse: parsers.text,
    help: "with FNMESH_NATS_URL: directory of the NATS trust chain (operator.nk, account.nk, signing-key.nk) every part's NATS user is minted from; created with fresh keys and a `nats-server.conf` to include in your NATS server when empty",
  }),
  helm: setting({
    env: 'FNMESH_CLUSTER_HELM',
    flag: '--helm [bool]',
    default: 'false',
    parse: parsers.bool,
    help: 'install the chart (`helm install fnmesh charts/fnmesh -n fnmesh --create-namespace --wait`, the gateway Service as a NodePort) instead of running the operator and the gateway on this machine; needs helm (`bash scripts/helm-tool.sh`)',
  }),
  helmValues: setting({
    env: 'FNMESH_CLUSTER_HELM_VALUES',
    flag: '--values <files>',
    unset: 'none',
    parse: parsers.commaList,
    help: 'with --helm: values files for the chart, comma-separated, after the local defaults (such as charts/fnmesh/ci/embedded-values.yaml)',
  }),
  helmSet: setting({
    env: 'FNMESH_CLUSTER_HELM_SET',
    flag: '--set <key=value,...>',
    unset: 'none',
    parse: parsers.text,
    help: "with --helm: values for the chart as helm's `--set` takes them (after --values), such as nats.mode=embedded,gateway.replicas=1",
  }),
  logLevel: logLevelSetting,
};
