import { corsSummary, withDevOrigins } from './dev-origins';

describe("the local mesh's browser origins", () => {
  it('defaults to any port of localhost and 127.0.0.1, unless the variable is set (even empty)', () => {
    expect(withDevOrigins({}).FNMESH_CORS_ORIGINS).toBe('http://localhost:*,http://127.0.0.1:*');
    expect(withDevOrigins({ FNMESH_CORS_ORIGINS: 'https://app.example.com' }).FNMESH_CORS_ORIGINS).toBe(
      'https://app.example.com',
    );
    expect(withDevOrigins({ FNMESH_CORS_ORIGINS: '' }).FNMESH_CORS_ORIGINS).toBe('');
  });

  it('says in the summary which origins may call, and how to change it', () => {
    expect(corsSummary(['http://localhost:*', 'http://127.0.0.1:*'], true)).toBe(
      "  browsers  http://localhost:*, http://127.0.0.1:*   (with credentials); --cors-origins replaces the list, '' turns it off",
    );
    expect(corsSummary('*', false)).toContain('* (any origin);');
    expect(corsSummary([], true)).toContain('no origin allowed');
  });
});
