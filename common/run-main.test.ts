import { ConfigError } from './errors';
import { runMain } from './run-main';

/** process.exit (throwing, like the real one does not return) and console.error stubbed; the signal listeners runMain adds are removed afterwards. */
function harness(exitThrows = true) {
  const before = new Map((['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, process.listeners(s)]));
  let exited: (code: number) => void = () => undefined;
  const exitCode = new Promise<number>((resolve) => (exited = resolve));
  const exit = jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
    exited(code ?? 0);
    if (exitThrows) throw new Error(`exit ${code}`);
  }) as never);
  const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  const added = (signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP') =>
    process.listeners(signal).filter((l) => !before.get(signal)!.includes(l));
  const restore = (): void => {
    for (const signal of before.keys()) for (const l of added(signal)) process.off(signal, l);
    exit.mockRestore();
    stderr.mockRestore();
    process.exitCode = undefined;
  };
  return { exit, stderr, exitCode, added, restore };
}

describe('runMain', () => {
  it('a ConfigError: its message, exit 2, no signal handlers left', async () => {
    const h = harness();
    try {
      const start = async (): Promise<never> => {
        throw new ConfigError('FNMESH_X="y" is not valid: it accepts z');
      };
      await expect(runMain('fnmesh part', start)).rejects.toThrow('exit 2');
      expect(h.stderr).toHaveBeenCalledWith('fnmesh part: FNMESH_X="y" is not valid: it accepts z');
      expect(h.added('SIGTERM')).toHaveLength(0);
    } finally {
      h.restore();
    }
  });

  it('any other failure to start: printed, exit 1', async () => {
    const h = harness();
    try {
      await expect(runMain('fnmesh part', () => Promise.reject(new Error('port taken')))).rejects.toThrow('exit 1');
      expect(h.stderr).toHaveBeenCalledWith('fnmesh part: cannot start: port taken');
    } finally {
      h.restore();
    }
  });

  it('SIGTERM stops what started, through its logger, and exits 0', async () => {
    const h = harness(false); // exits from a promise callback: a throwing stub would be an unhandled rejection
    try {
      const stop = jest.fn(() => Promise.resolve());
      const logged: string[] = [];
      const logger = { info: (m: string) => void logged.push(m), error: (m: string) => void logged.push(m) };
      const running = await runMain('fnmesh part', async (run) => {
        run.useLogger(logger);
        return { stop };
      });
      expect(h.exit).not.toHaveBeenCalled();
      for (const l of h.added('SIGTERM')) l('SIGTERM');
      await expect(h.exitCode).resolves.toBe(0);
      expect(stop).toHaveBeenCalledTimes(1);
      expect(running.stop).toBe(stop);
      expect(logged).toEqual(['signal received; stopping']);
    } finally {
      h.restore();
    }
  });

  it('a second signal exits 1 at once, after onForcedExit', async () => {
    const h = harness();
    try {
      const forced = jest.fn();
      await runMain('fnmesh part', async () => ({ stop: () => new Promise<void>(() => undefined) }), {
        signals: ['SIGHUP'],
        onForcedExit: forced,
      });
      const [listener] = h.added('SIGHUP');
      listener!('SIGHUP');
      expect(() => listener!('SIGHUP')).toThrow('exit 1');
      expect(forced).toHaveBeenCalledTimes(1);
      expect(h.stderr).toHaveBeenCalledWith(expect.stringContaining('second signal: exiting now'));
    } finally {
      h.restore();
    }
  });
});
