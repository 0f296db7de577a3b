/**
 * `fnmesh broker`'s settings: the embedded NATS-protocol broker run on its own. The same variables
 * configure the gateway's embedded broker. Light: the CLI imports it.
 */
import { logLevelSetting, setting } from '../common/config';
import * as parsers from '../common/parsers';

export const BROKER_SETTINGS = {
  host: setting({
    env: 'FNMESH_BROKER_HOST',
    flag: '--host <host>',
    default: '127.0.0.1',
    parse: parsers.host,
    help: 'address to listen on',
  }),
  port: setting({
    env: 'FNMESH_BROKER_PORT',
    flag: '--port <port>',
    default: '4222',
    parse: parsers.port(true),
    help: 'port to listen on',
  }),
  token: setting({
    env: 'FNMESH_NATS_TOKEN',
    flag: '--token <token>',
    parse: parsers.text,
    help: 'require this auth token from clients',
  }),
  operator: setting({
    env: 'FNMESH_BROKER_OPERATOR',
    flag: '--operator <file>',
    unset: 'no JWT auth',
    parse: parsers.text,
    help: "JWT auth (nats-server's operator mode): a file with the trusted operator's JWT or public key",
  }),
  accounts: setting({
    env: 'FNMESH_BROKER_ACCOUNTS',
    flag: '--accounts <files>',
    parse: parsers.commaList,
    help: 'account JWT files the broker trusts (its memory resolver), comma-separated; needs FNMESH_BROKER_OPERATOR',
  }),
  tlsCert: setting({
    env: 'FNMESH_BROKER_TLS_CERT',
    flag: '--tls-cert <file>',
    unset: 'no TLS',
    parse: parsers.text,
    help: 'serve TLS with this PEM certificate (chain); needs FNMESH_BROKER_TLS_KEY',
  }),
  tlsKey: setting({
    env: 'FNMESH_BROKER_TLS_KEY',
    flag: '--tls-key <file>',
    parse: parsers.text,
    help: 'the PEM private key of FNMESH_BROKER_TLS_CERT',
  }),
  tlsCa: setting({
    env: 'FNMESH_BROKER_TLS_CA',
    flag: '--tls-ca <file>',
    unset: 'client certificates not required',
    parse: parsers.text,
    help: 'require client certificates signed by this PEM CA bundle',
  }),
  logLevel: logLevelSetting,
};
