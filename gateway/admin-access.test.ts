import { adminAccess, isAdminPath } from './admin-access';

const TOKEN = 'a'.repeat(40);

describe('adminAccess', () => {
  it('serves nothing on the call port without FNMESH_ADMIN_TOKEN, and says where it is', () => {
    const a = adminAccess('/metrics', `Bearer ${TOKEN}`, undefined);
    expect(a).toMatchObject({ ok: false, status: 404 });
    expect(!a.ok && a.message).toMatch(/ops listener \(FNMESH_OPS_LISTEN\).*FNMESH_ADMIN_TOKEN/);
  });
  it.each([
    ['no header', undefined],
    ['another scheme', `Basic ${TOKEN}`],
    ['a longer token', `Bearer ${TOKEN}a`],
    ['a shorter token', `Bearer ${TOKEN.slice(1)}`],
    ['an empty token', 'Bearer '],
  ])('refuses %s with 401', (_what, header) => {
    expect(adminAccess('/v1/services', header, TOKEN)).toMatchObject({ ok: false, status: 401 });
  });
  it('admits the admin token, whatever the case of the scheme', () => {
    expect(adminAccess('/v1/services', `Bearer ${TOKEN}`, TOKEN)).toEqual({ ok: true });
    expect(adminAccess('/v1/services', `bearer  ${TOKEN} `, TOKEN)).toEqual({ ok: true });
  });
  it('knows its paths', () => {
    expect(isAdminPath('/metrics')).toBe(true);
    expect(isAdminPath('/v1/services')).toBe(true);
    expect(isAdminPath('/healthz')).toBe(false);
  });
});
