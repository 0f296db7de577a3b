/**
 * Reads the broker's security settings (operator and account JWT files, TLS PEM files) into the options
 * `startBroker` takes, failing at start with the setting, the file and the fix when one is missing or wrong.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../common/errors';
import { JwtAuthenticator } from './jwt-auth';
import type { BrokerTlsOptions } from './server';
import type { JwtTrust } from './permissions';

export interface BrokerSecuritySettings {
  operator?: string;
  accounts?: string[];
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

export interface BrokerSecurity {
  jwt?: JwtTrust;
  tls?: BrokerTlsOptions;
}

export function loadBrokerSecurity(s: BrokerSecuritySettings, read = readText): BrokerSecurity {
  const out: BrokerSecurity = {};
  if (s.operator !== undefined) {
    const accounts = s.accounts ?? [];
    if (accounts.length === 0)
      throw new ConfigError(
        'FNMESH_BROKER_OPERATOR is set but FNMESH_BROKER_ACCOUNTS is not: list the account JWT files the broker trusts',
      );
    out.jwt = {
      operators: [read(s.operator, 'FNMESH_BROKER_OPERATOR')],
      accounts: accounts.map((f) => read(f, 'FNMESH_BROKER_ACCOUNTS')),
    };
    try {
      new JwtAuthenticator(out.jwt.operators, out.jwt.accounts);
    } catch (err) {
      throw new ConfigError(
        `FNMESH_BROKER_OPERATOR / FNMESH_BROKER_ACCOUNTS (${[s.operator, ...accounts].join(', ')}): ${(err as Error).message.replace(/^broker: /, '')}`,
      );
    }
  } else if (s.accounts?.length) {
    throw new ConfigError(
      'FNMESH_BROKER_ACCOUNTS is set without FNMESH_BROKER_OPERATOR: set the trusted operator JWT (or public key) file',
    );
  }
  if (s.tlsCert !== undefined || s.tlsKey !== undefined) {
    if (s.tlsCert === undefined || s.tlsKey === undefined)
      throw new ConfigError('TLS needs both FNMESH_BROKER_TLS_CERT and FNMESH_BROKER_TLS_KEY: set the missing one');
    out.tls = {
      cert: read(s.tlsCert, 'FNMESH_BROKER_TLS_CERT'),
      key: read(s.tlsKey, 'FNMESH_BROKER_TLS_KEY'),
      ...(s.tlsCa !== undefined ? { ca: read(s.tlsCa, 'FNMESH_BROKER_TLS_CA') } : {}),
    };
  } else if (s.tlsCa !== undefined) {
    throw new ConfigError('FNMESH_BROKER_TLS_CA needs FNMESH_BROKER_TLS_CERT and FNMESH_BROKER_TLS_KEY: set them too');
  }
  return out;
}

function readText(file: string, setting: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(
      `${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): check the path`,
    );
  }
  if (text === '') throw new ConfigError(`${setting}: ${file} is empty: give the file its content`);
  return text;
}
