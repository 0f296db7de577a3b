import { SIDECAR_BUNDLE, directBundle } from './bundles';

describe('directBundle', () => {
  it('starts the bare part command from its bundle', () => {
    expect(directBundle(['sidecar'])).toBe(SIDECAR_BUNDLE);
  });
  it('leaves flags, help and other commands to the CLI', () => {
    expect(directBundle(['sidecar', '--help'])).toBeUndefined();
    expect(directBundle(['sidecar', '--log-level', 'debug'])).toBeUndefined();
    expect(directBundle(['gateway'])).toBeUndefined();
    expect(directBundle([])).toBeUndefined();
  });
});
