import net from 'node:net';
import { ephemeralPortRange, freePort, pickWindow } from './ports';

describe('freePort', () => {
  it('reads the ephemeral range, and falls back to Linux default when it cannot', () => {
    expect(ephemeralPortRange(() => '32768\t60999\n')).toEqual([32768, 60999]);
    expect(ephemeralPortRange(() => '1024 65535')).toEqual([1024, 65535]);
    expect(ephemeralPortRange(() => 'garbage')).toEqual([32768, 60999]);
    expect(
      ephemeralPortRange(() => {
        throw new Error('ENOENT');
      }),
    ).toEqual([32768, 60999]);
  });

  it('picks below the ephemeral range, or leaves it to the kernel when there is no room', () => {
    expect(pickWindow([32768, 60999])).toEqual([10000, 29999]);
    expect(pickWindow([20000, 60999])).toEqual([10000, 19999]);
    expect(pickWindow([1024, 65535])).toBeUndefined();
  });

  it('hands out bindable ports outside the ephemeral range, never the same one twice in a row of 50', async () => {
    const [low] = ephemeralPortRange();
    const ports: number[] = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(50);
    if (pickWindow(ephemeralPortRange())) for (const p of ports) expect(p).toBeLessThan(low);
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(ports[0], '127.0.0.1', resolve));
    srv.close();
  });

  it('skips a port that is taken', async () => {
    const first = await freePort();
    // take the next few ports in the walk, so freePort has to go past them
    const taken: net.Server[] = [];
    for (let p = first + 1; p <= first + 3; p++) {
      const srv = net.createServer();
      const ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen(p, '127.0.0.1', () => resolve(true));
      });
      if (ok) taken.push(srv);
    }
    const next = await freePort();
    expect(taken.map((s) => (s.address() as net.AddressInfo).port)).not.toContain(next);
    for (const s of taken) s.close();
  });
});
