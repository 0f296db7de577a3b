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
  logLevel: logLevelSetting,
};
