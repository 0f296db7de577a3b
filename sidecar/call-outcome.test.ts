import { classifyConnectionError, isProvenUnread } from './call-outcome';

const err = (fields: Record<string, unknown>): Error => Object.assign(new Error('x'), fields);

describe('classifyConnectionError', () => {
  test.each([
    ['connect refused', { code: 'ECONNREFUSED', syscall: 'connect' }, 'refused'],
    ['connect timeout', { code: 'ECONNECT_TIMEOUT' }, 'connect-timeout'],
    ['a reset seen on read (closed with the request unread)', { code: 'ECONNRESET', syscall: 'read' }, 'reset-unread'],
    ['a reset seen on write', { code: 'ECONNRESET', syscall: 'write' }, 'reset-unread'],
    ['EPIPE on write (written after the close)', { code: 'EPIPE', syscall: 'write' }, 'reset-unread'],
    [
      'a hang up of a kept-alive connection closed before the request was written',
      { code: 'ECONNRESET', closedBeforeWrite: true },
      'reset-unread',
    ],
  ])('%s → not executed', (_what, fields, cause) => {
    expect(classifyConnectionError(err(fields))).toEqual({ executed: false, cause });
  });

  test.each([
    ["Node's 'socket hang up' (EOF after the request was written)", { code: 'ECONNRESET' }, 'reset'],
    ['a close mid-answer', { code: 'ECONNRESET', answerStarted: true }, 'reset'],
    ['a read reset after the answer began', { code: 'ECONNRESET', syscall: 'read', answerStarted: true }, 'reset'],
    ['an answer that does not parse', { code: 'HPE_INVALID_CONSTANT' }, 'reset'],
    ['EPIPE without a syscall', { code: 'EPIPE' }, 'reset'],
    ['the deadline', { code: 'ABORT_ERR', deadline: true }, 'timeout'],
    ['the deadline, even with a socket code', { code: 'ECONNREFUSED', deadline: true }, 'timeout'],
  ])('%s → may have run', (_what, fields, failure) => {
    expect(classifyConnectionError(err(fields))).toEqual({ executed: 'maybe', failure });
  });

  test('anything that is not an error object may have run', () => {
    expect(classifyConnectionError(undefined)).toEqual({ executed: 'maybe', failure: 'reset' });
    expect(classifyConnectionError('boom')).toEqual({ executed: 'maybe', failure: 'reset' });
  });
});

describe('isProvenUnread (what the client may send again on a fresh connection)', () => {
  test('only a real reset before any byte of an answer', () => {
    expect(isProvenUnread(err({ code: 'ECONNRESET', syscall: 'read' }))).toBe(true);
    expect(isProvenUnread(err({ code: 'EPIPE', syscall: 'write' }))).toBe(true);
    expect(isProvenUnread(err({ code: 'ECONNRESET' }))).toBe(false); // socket hang up
    expect(isProvenUnread(err({ code: 'ECONNRESET', syscall: 'read', answerStarted: true }))).toBe(false);
    expect(isProvenUnread(err({ code: 'ECONNREFUSED', syscall: 'connect' }))).toBe(false); // nothing to send again to
    expect(isProvenUnread(null)).toBe(false);
  });
});
