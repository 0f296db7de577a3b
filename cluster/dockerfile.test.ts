import { containerArgv, readImageConfig, type ImageConfig } from './dockerfile';

function image(over: Partial<ImageConfig> = {}): ImageConfig {
  return { workdir: '/', env: {}, entrypoint: [], cmd: [], ...over };
}

describe('readImageConfig', () => {
  test('an empty Dockerfile gives the defaults', () => {
    expect(readImageConfig('')).toEqual({ workdir: '/', env: {}, entrypoint: [], cmd: [] });
  });

  test('reads WORKDIR, ENV, ENTRYPOINT and CMD in exec form', () => {
    const config = readImageConfig(
      [
        'FROM node:20',
        'WORKDIR /app',
        'ENV NODE_ENV=production',
        'ENTRYPOINT ["node", "/app/bin/cli.js"]',
        'CMD ["--help"]',
      ].join('\n'),
    );
    expect(config).toEqual({
      workdir: '/app',
      env: { NODE_ENV: 'production' },
      entrypoint: ['node', '/app/bin/cli.js'],
      cmd: ['--help'],
    });
  });

  test('instructions are case-insensitive and surrounding whitespace is ignored', () => {
    const config = readImageConfig('  from alpine\n  workdir   /srv  \n\tcmd ["run"]\n');
    expect(config.workdir).toBe('/srv');
    expect(config.cmd).toEqual(['run']);
  });

  test('the shell form runs through /bin/sh -c', () => {
    const config = readImageConfig('FROM alpine\nENTRYPOINT exec node server.js --port 80\nCMD echo "hi there"');
    expect(config.entrypoint).toEqual(['/bin/sh', '-c', 'exec node server.js --port 80']);
    expect(config.cmd).toEqual(['/bin/sh', '-c', 'echo "hi there"']);
  });

  test('ENTRYPOINT clears a CMD set before it, but not one set after it', () => {
    expect(readImageConfig('FROM a\nCMD ["old"]\nENTRYPOINT ["run"]')).toMatchObject({ entrypoint: ['run'], cmd: [] });
    expect(readImageConfig('FROM a\nENTRYPOINT ["run"]\nCMD ["new"]')).toMatchObject({
      entrypoint: ['run'],
      cmd: ['new'],
    });
  });

  test('a later CMD or ENTRYPOINT replaces the earlier one', () => {
    expect(readImageConfig('FROM a\nCMD ["one"]\nCMD ["two", "2"]').cmd).toEqual(['two', '2']);
    expect(readImageConfig('FROM a\nENTRYPOINT ["one"]\nENTRYPOINT ["two"]').entrypoint).toEqual(['two']);
  });

  test('only the final stage counts: FROM resets every setting', () => {
    const text = [
      'FROM node:20 AS build',
      'WORKDIR /src',
      'ENV BUILD=1',
      'ENTRYPOINT ["build"]',
      'CMD ["all"]',
      'FROM node:20-slim',
      'ENV RUNTIME=1',
    ].join('\n');
    expect(readImageConfig(text)).toEqual({ workdir: '/', env: { RUNTIME: '1' }, entrypoint: [], cmd: [] });
  });

  test('a relative WORKDIR is relative to the previous one', () => {
    expect(readImageConfig('FROM a\nWORKDIR /app\nWORKDIR lib').workdir).toBe('/app/lib');
    expect(readImageConfig('FROM a\nWORKDIR /app/\nWORKDIR lib').workdir).toBe('/app/lib');
    expect(readImageConfig('FROM a\nWORKDIR srv').workdir).toBe('/srv');
    expect(readImageConfig('FROM a\nWORKDIR /app\nWORKDIR /opt').workdir).toBe('/opt');
  });

  test('continuation lines are joined into one instruction', () => {
    const text = [
      'FROM a',
      'ENV A=1 \\',
      '    B=2',
      'CMD ["node", \\',
      '     "server.js"]',
      'RUN echo \\',
      '  done',
    ].join('\n');
    const config = readImageConfig(text);
    expect(config.env).toEqual({ A: '1', B: '2' });
    expect(config.cmd).toEqual(['node', 'server.js']);
  });

  test('a continuation on the last line still counts', () => {
    expect(readImageConfig('FROM a\nCMD ["x", \\\n "y"] \\').cmd).toEqual(['x', 'y']);
  });

  test('comment and blank lines are skipped; a # inside a value is not a comment', () => {
    const text = [
      '# syntax=docker/dockerfile:1',
      '',
      'FROM a',
      '   # CMD ["commented"]',
      '',
      'ENV COLOR=#fff',
      'CMD ["run"]',
    ].join('\n');
    const config = readImageConfig(text);
    expect(config.cmd).toEqual(['run']);
    expect(config.env).toEqual({ COLOR: '#fff' });
  });

  test('CRLF line endings are read like LF', () => {
    expect(readImageConfig('FROM a\r\nWORKDIR /app\r\nCMD ["a", \\\r\n "b"]\r\n')).toMatchObject({
      workdir: '/app',
      cmd: ['a', 'b'],
    });
  });

  test('ENV KEY=value pairs, with double and single quotes', () => {
    const config = readImageConfig(String.raw`FROM a
ENV A=1 B="two words" C='single $quoted' D="esc \"q\" \\ back" E= F=x=y`);
    expect(config.env).toEqual({ A: '1', B: 'two words', C: 'single $quoted', D: 'esc "q" \\ back', E: '', F: 'x=y' });
  });

  test('legacy ENV KEY value takes the rest of the line, equals signs included', () => {
    expect(readImageConfig('FROM a\nENV GREETING hello big world').env).toEqual({ GREETING: 'hello big world' });
    expect(readImageConfig('FROM a\nENV OPTS a=b c=d').env).toEqual({ OPTS: 'a=b c=d' });
  });

  test('a later ENV overrides an earlier one and keeps the others', () => {
    expect(readImageConfig('FROM a\nENV A=1 B=1\nENV B=2').env).toEqual({ A: '1', B: '2' });
  });

  test('an ENV without a value sets nothing', () => {
    expect(readImageConfig('FROM a\nENV LONELY').env).toEqual({});
  });

  test('an exec form that is not a JSON array of strings throws, saying how to write it', () => {
    expect(() => readImageConfig('FROM a\nCMD ["node", server.js]')).toThrow(
      'CMD ["node", server.js] is not a JSON array of strings: write it as ["executable", "arg"]',
    );
    expect(() => readImageConfig('FROM a\nENTRYPOINT ["node", 1]')).toThrow(
      'ENTRYPOINT ["node", 1] is not a JSON array of strings',
    );
    expect(() => readImageConfig('FROM a\nCMD [{"a": 1}]')).toThrow(/^CMD .* is not a JSON array of strings/);
  });

  test('instructions it does not read are ignored', () => {
    const text = 'FROM a\nRUN ["touch", "x"]\nCOPY . .\nUSER node\nEXPOSE 8080\nLABEL a=b\nARG X=1\nCMD ["ok"]';
    expect(readImageConfig(text)).toEqual({ workdir: '/', env: {}, entrypoint: [], cmd: ['ok'] });
  });

  test('comment and blank lines inside a continuation are dropped without ending it, as Docker does', () => {
    expect(readImageConfig('FROM a\nCMD ["node", \\\n# the entry point\n  "server.js"]').cmd).toEqual([
      'node',
      'server.js',
    ]);
    expect(readImageConfig('FROM a\nENV A=1 \\\n# note\n\n  B=2').env).toEqual({ A: '1', B: '2' });
  });

  test('a backslash escapes a space in a bare ENV value', () => {
    expect(readImageConfig('FROM a\nENV A=hello\\ world B=x').env).toEqual({ A: 'hello world', B: 'x' });
  });
});

describe('containerArgv (Kubernetes command/args over ENTRYPOINT/CMD)', () => {
  const img = image({ entrypoint: ['node', '/app/bin/cli.js'], cmd: ['--help'] });

  test('neither command nor args: ENTRYPOINT then CMD', () => {
    expect(containerArgv(img, undefined, undefined)).toEqual(['node', '/app/bin/cli.js', '--help']);
  });

  test('args only: ENTRYPOINT then args (args replace CMD)', () => {
    expect(containerArgv(img, undefined, ['sidecar', '-v'])).toEqual(['node', '/app/bin/cli.js', 'sidecar', '-v']);
  });

  test('command only: command alone (CMD is not used)', () => {
    expect(containerArgv(img, ['python3', 'x.py'], undefined)).toEqual(['python3', 'x.py']);
  });

  test('command and args: command then args', () => {
    expect(containerArgv(img, ['python3'], ['x.py', '1'])).toEqual(['python3', 'x.py', '1']);
  });

  test('an empty command is the same as none', () => {
    expect(containerArgv(img, [], ['sidecar'])).toEqual(['node', '/app/bin/cli.js', 'sidecar']);
  });

  test('an image with CMD only runs CMD, or args instead of it', () => {
    const cmdOnly = image({ cmd: ['node', 'index.js'] });
    expect(containerArgv(cmdOnly, undefined, undefined)).toEqual(['node', 'index.js']);
    expect(containerArgv(cmdOnly, undefined, ['python3', 'main.py'])).toEqual(['python3', 'main.py']);
  });

  test('an image with neither gives an empty argv', () => {
    expect(containerArgv(image(), undefined, undefined)).toEqual([]);
  });

  test('does not share arrays with the image', () => {
    const argv = containerArgv(img, undefined, undefined);
    argv.push('extra');
    expect(img.entrypoint).toEqual(['node', '/app/bin/cli.js']);
    expect(img.cmd).toEqual(['--help']);
  });
});
