import { meshOperatorModeConfig, operatorModeConfig } from './server-config';
import { createMeshTrust, meshAccountJwts, operatorJwt } from './trust-chain';

test('operator mode with the memory resolver and the preloaded accounts', () => {
  expect(operatorModeConfig({ operatorJwt: 'OPJWT', accounts: { AKEY: 'ACCJWT' }, systemAccount: 'AKEY' })).toBe(
    'operator: "OPJWT"\nsystem_account: "AKEY"\nresolver: MEMORY\nresolver_preload: {\n  "AKEY": "ACCJWT"\n}\n',
  );
});

test("the mesh's fragment: its operator, its system account, and both accounts preloaded", async () => {
  const trust = createMeshTrust();
  const accounts = await meshAccountJwts(trust);
  expect(await meshOperatorModeConfig(trust)).toBe(
    operatorModeConfig({
      operatorJwt: await operatorJwt(trust),
      systemAccount: trust.systemAccount.getPublicKey(),
      accounts,
    }),
  );
  const text = await meshOperatorModeConfig(trust);
  expect(text).toContain(`system_account: "${trust.systemAccount.getPublicKey()}"`);
  expect(text).toContain(`"${trust.account.getPublicKey()}": "`);
  expect(text).toContain(`"${trust.systemAccount.getPublicKey()}": "`);
});
