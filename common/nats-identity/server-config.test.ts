import { operatorModeConfig } from './server-config';

test('operator mode with the memory resolver and the preloaded accounts', () => {
  expect(operatorModeConfig({ operatorJwt: 'OPJWT', accounts: { AKEY: 'ACCJWT' }, systemAccount: 'AKEY' })).toBe(
    'operator: "OPJWT"\nsystem_account: "AKEY"\nresolver: MEMORY\nresolver_preload: {\n  "AKEY": "ACCJWT"\n}\n',
  );
});
