/** The security settings fail at start naming the setting, the file and the fix. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createOperator, encodeOperator } from '@nats-io/jwt';
import { loadBrokerSecurity } from './security-files';

describe('loadBrokerSecurity', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'broker-sec-'));
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('is empty without settings', () => {
    expect(loadBrokerSecurity({})).toEqual({});
  });

  it('names a missing file and its setting', () => {
    expect(() => loadBrokerSecurity({ operator: path.join(dir, 'nope.jwt'), accounts: ['x'] })).toThrow(
      /FNMESH_BROKER_OPERATOR: cannot read .*nope\.jwt \(ENOENT\): check the path/,
    );
  });

  it('needs accounts with an operator, and a key with a certificate', () => {
    expect(() => loadBrokerSecurity({ operator: 'op.jwt' })).toThrow(/FNMESH_BROKER_ACCOUNTS is not/);
    expect(() => loadBrokerSecurity({ tlsCert: 'c.pem' })).toThrow(/FNMESH_BROKER_TLS_KEY/);
    expect(() => loadBrokerSecurity({ tlsCa: 'ca.pem' })).toThrow(/FNMESH_BROKER_TLS_CA needs/);
  });

  it('refuses a malformed account JWT at start, naming the files', async () => {
    const op = file('op.jwt', await encodeOperator('op', createOperator()));
    const bad = file('bad.jwt', 'not.a.jwt');
    expect(() => loadBrokerSecurity({ operator: op, accounts: [bad] })).toThrow(
      /FNMESH_BROKER_OPERATOR \/ FNMESH_BROKER_ACCOUNTS \(.*bad\.jwt\): an account JWT does not verify/,
    );
  });
});
