/**
 * Byte spans in a call envelope `{"params": <any JSON>, "timeout": <ms>}`, so that the value of `params` can
 * travel on exactly as the caller sent it (a parse and re-serialization turns `1e400` into `null` and rounds
 * a 30-digit integer), and the nesting depth, checked without recursion, before anything recursive touches
 * the value. No JSON library gives byte spans, hence this small scanner.
 *
 * The scanner does not validate JSON: the caller still runs `JSON.parse` over the whole text (V8's is
 * iterative, so a deep body cannot overflow the stack there) and refuses what it refuses. On valid JSON the
 * spans are exact: strings are skipped by their unescaped closing quote, and a top-level key written with
 * escapes (`"par\u0061ms"`) is decoded before it is compared. On any input it ends in linear time and never
 * throws.
 */

export interface Span {
  /** Offset of the value's first byte. */
  start: number;
  /** Offset just past the value's last byte (whitespace around the value excluded). */
  end: number;
}

/** The envelope keys whose values the gateway and the call API read. */
export const ENVELOPE_KEYS = ['params', 'timeout'] as const;
export type EnvelopeKey = (typeof ENVELOPE_KEYS)[number];

export type EnvelopeScan =
  | { kind: 'ok'; params?: Span; timeout?: Span }
  /** Arrays/objects nest deeper than allowed inside the value of top-level key `key`. */
  | { kind: 'too-deep'; key: string; maxDepth: number }
  /** An envelope key given twice (JSON.parse would silently keep the last). */
  | { kind: 'duplicate'; key: EnvelopeKey }
  /** Not an object, or not well-formed: JSON.parse gives the caller's message. */
  | { kind: 'malformed' };

export type DepthScan = { kind: 'ok' } | { kind: 'too-deep'; maxDepth: number } | { kind: 'malformed' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Strings up to this long are read byte by byte for their closing quote; longer ones natively (memchr). */
const SHORT_STRING = 64;

/** Offset of the closing quote of the string whose opening quote is at `open`, or -1. */
function stringEnd(b: Buffer, open: number): number {
  const stop = Math.min(b.length, open + 1 + SHORT_STRING);
  let from = open + 1;
  for (; from < stop; from++) {
    const c = b[from];
    if (c === QUOTE) return from;
    if (c === BACKSLASH) from++;
  }
  for (;;) {
    const q = b.indexOf(QUOTE, from);
    if (q === -1) return -1;
    let backslashes = 0;
    for (let k = q - 1; k > open && b[k] === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return q;
    from = q + 1;
  }
}

/** The key of the string at [open, close] (quotes included), decoding escapes; undefined when malformed. */
function keyText(b: Buffer, open: number, close: number): string | undefined {
  let escaped = false;
  for (let k = open + 1; k < close && !escaped; k++) escaped = b[k] === BACKSLASH;
  if (!escaped) return b.toString('latin1', open + 1, close);
  try {
    return JSON.parse(b.toString('utf8', open, close + 1)) as string;
  } catch {
    return undefined;
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Scans `{"params": …, …}`: where the values of `params` and `timeout` are, whether a value of the envelope
 * nests more than `maxDepth` arrays/objects (`[]` is depth 1, a scalar 0), whether an envelope key repeats.
 */
export function scanCallEnvelope(bytes: Uint8Array, maxDepth: number): EnvelopeScan {
  const b = asBuffer(bytes);
  const n = b.length;
  let i = 0;
  while (i < n && isWhitespace(b[i]!)) i++;
  if (b[i] !== OPEN_OBJECT) return { kind: 'malformed' };
  let params: Span | undefined;
  let timeout: Span | undefined;
  // Inside the envelope (depth 1): the key being read, where its value started and where it ends so far.
  let key: string | undefined;
  let expectKey = true;
  let valueStart = -1;
  let lastEnd = -1;
  let depth = 1;
  const limit = maxDepth + 1;
  for (i++; i < n; i++) {
    const c = b[i]!;
    if (depth >= 2) {
      // Inside a value: only strings and brackets matter.
      if (c === QUOTE) {
        const close = stringEnd(b, i);
        if (close === -1) return { kind: 'malformed' };
        i = close;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (++depth > limit) return { kind: 'too-deep', key: key ?? '', maxDepth };
      } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        if (--depth === 1) lastEnd = i + 1;
      }
      continue;
    }
    if (isWhitespace(c)) continue;
    const endsValue = c === COMMA || c === CLOSE_OBJECT || c === CLOSE_ARRAY;
    if (endsValue) {
      // the value of `key` is [valueStart, lastEnd)
      if (key === 'params' || key === 'timeout') {
        if (valueStart === -1) return { kind: 'malformed' };
        const span = { start: valueStart, end: lastEnd };
        if (key === 'params') {
          if (params) return { kind: 'duplicate', key };
          params = span;
        } else {
          if (timeout) return { kind: 'duplicate', key };
          timeout = span;
        }
      }
      key = undefined;
      valueStart = -1;
      if (c === COMMA) {
        expectKey = true;
        continue;
      }
      i++;
      while (i < n && isWhitespace(b[i]!)) i++;
      if (i !== n || c !== CLOSE_OBJECT) return { kind: 'malformed' };
      const found: EnvelopeScan = { kind: 'ok' };
      if (params) found.params = params;
      if (timeout) found.timeout = timeout;
      return found;
    }
    if (!expectKey && valueStart === -1 && c !== COLON) valueStart = i;
    if (c === QUOTE) {
      const close = stringEnd(b, i);
      if (close === -1) return { kind: 'malformed' };
      if (expectKey) {
        key = keyText(b, i, close);
        if (key === undefined) return { kind: 'malformed' };
        expectKey = false;
      }
      i = close;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > limit) return { kind: 'too-deep', key: key ?? '', maxDepth };
    }
    lastEnd = i + 1;
  }
  return { kind: 'malformed' };
}

/** Whether a bare JSON value nests more than `maxDepth` arrays/objects; iterative, linear. */
export function scanDepth(bytes: Uint8Array, maxDepth: number): DepthScan {
  const b = asBuffer(bytes);
  const n = b.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const close = stringEnd(b, i);
      if (close === -1) return { kind: 'malformed' };
      i = close;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > maxDepth) return { kind: 'too-deep', maxDepth };
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (--depth < 0) return { kind: 'malformed' };
    }
  }
  return { kind: 'ok' };
}

/**
 * How many object members a JSON value's text holds (its `:` outside strings), counting every one given
 * twice. Compared with the members of the parsed value (`countMembers`), it tells whether a key repeats in
 * one object without tracking keys. Iterative, linear.
 */
export function countMemberTexts(bytes: Uint8Array): number {
  const b = asBuffer(bytes);
  let members = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const close = stringEnd(b, i);
      if (close === -1) return members;
      i = close;
    } else if (c === COLON) members++;
  }
  return members;
}

/** How many object members a parsed JSON value holds, at every depth. Iterative. */
export function countMembers(value: unknown): number {
  let members = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const item of v) stack.push(item);
      continue;
    }
    for (const key in v) {
      members++;
      stack.push((v as Record<string, unknown>)[key]);
    }
  }
  return members;
}

/** Whether some object in the value's text gives a key twice (the value must be `JSON.parse` of the text). */
export function hasRepeatedKey(bytes: Uint8Array, parsed: unknown): boolean {
  return countMemberTexts(bytes) !== countMembers(parsed);
}
