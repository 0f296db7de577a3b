import path from 'node:path';
import { validatePaths } from './validate';

describe('fnmesh validate', () => {
  it('lists the functions of each service (the 404 of an unknown function does not)', async () => {
    const result = await validatePaths([path.join(__dirname, '..', 'examples', 'text.yaml')]);
    expect(result.errors).toBe(0);
    expect(result.lines).toEqual([
      { ok: true, text: expect.stringMatching(/text\.yaml: default\/text \(upper, count\)$/) },
    ]);
  });
});
