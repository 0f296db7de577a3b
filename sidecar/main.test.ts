import { main } from './main';

test('a ConfigError prints its message to stderr and exits 2', async () => {
  const exit = jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
    throw new Error(`exit ${code}`);
  }) as never);
  const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    await expect(main({ FNMESH_NATS_URL: 'nats://x:4222' })).rejects.toThrow('exit 2');
    expect(err).toHaveBeenCalledWith(expect.stringContaining('FNMESH_SERVICE is required'));
  } finally {
    exit.mockRestore();
    err.mockRestore();
  }
});
