/**
 * The settings every NATS client of the mesh (gateway, sidecar) shares for who it is and how it talks to
 * NATS: its `.creds` file and TLS files. One definition of the variables and rows; each part's table
 * includes them, and the sidecar's environment (sidecar-env.ts) names the same variables.
 * Light on purpose (the CLI imports every table).
 */
import { setting } from './config';
import { ConfigError } from './errors';
import * as parsers from './parsers';

export const NATS_CLIENT_ENV = {
  creds: 'FNMESH_NATS_CREDS',
  tlsCa: 'FNMESH_NATS_TLS_CA',
  tlsCert: 'FNMESH_NATS_TLS_CERT',
  tlsKey: 'FNMESH_NATS_TLS_KEY',
} as const;

export const NATS_CLIENT_SETTINGS = {
  natsCreds: setting({
    env: NATS_CLIENT_ENV.creds,
    flag: '--nats-creds <file>',
    unset: 'no NATS user',
    parse: parsers.text,
    help: "this part's NATS user: a `.creds` file (user JWT and nkey seed); watched, and a rotated file is taken up by a connection handover without a failed call (a malformed one is logged, the connection kept)",
  }),
  natsTlsCa: setting({
    env: NATS_CLIENT_ENV.tlsCa,
    flag: '--nats-tls-ca <file>',
    unset: 'the system CAs (when the URL is tls://)',
    parse: parsers.text,
    help: "PEM file of the CA that signed the NATS server's certificate; setting it turns TLS on",
  }),
  natsTlsCert: setting({
    env: NATS_CLIENT_ENV.tlsCert,
    flag: '--nats-tls-cert <file>',
    unset: 'no client certificate',
    parse: parsers.text,
    help: `PEM client certificate for NATS servers that verify clients; needs ${NATS_CLIENT_ENV.tlsKey}`,
  }),
  natsTlsKey: setting({
    env: NATS_CLIENT_ENV.tlsKey,
    flag: '--nats-tls-key <file>',
    parse: parsers.text,
    help: `the PEM private key of ${NATS_CLIENT_ENV.tlsCert}`,
  }),
};

export interface NatsTlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface NatsClientCredentials {
  credsFile?: string;
  tls?: NatsTlsFiles;
}

/** The read setting values as connectNats options; a certificate without its key (or a key alone) is refused. */
export function natsClientCredentials(values: {
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
}): NatsClientCredentials {
  if (Boolean(values.natsTlsCert) !== Boolean(values.natsTlsKey)) {
    const [set, unset] = values.natsTlsCert
      ? [NATS_CLIENT_ENV.tlsCert, NATS_CLIENT_ENV.tlsKey]
      : [NATS_CLIENT_ENV.tlsKey, NATS_CLIENT_ENV.tlsCert];
    throw new ConfigError(`${set} is set but ${unset} is not: a client certificate needs its key; set both or neither`);
  }
  const out: NatsClientCredentials = {};
  if (values.natsCreds) out.credsFile = values.natsCreds;
  const tls: NatsTlsFiles = {};
  if (values.natsTlsCa) tls.caFile = values.natsTlsCa;
  if (values.natsTlsCert) tls.certFile = values.natsTlsCert;
  if (values.natsTlsKey) tls.keyFile = values.natsTlsKey;
  if (Object.keys(tls).length > 0) out.tls = tls;
  return out;
}
