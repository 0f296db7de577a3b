/**
 * HTTP/1.1 over a bare TCP socket, for requests no HTTP client would send (malformed, oversized headers,
 * raw bytes in the path): writes the bytes, reads until the server closes, and parses what came back.
 */
import net from 'node:net';

export interface RawAnswer {
  /** 0 when nothing parseable came back (the connection was closed or reset first). */
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The socket error, if any (a reset after the answer is normal when the server stops reading). */
  error?: string;
}

/** Decodes a chunked body (no trailers needed). */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < data.length) {
    const eol = data.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(data.subarray(i, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export function parseRawAnswer(data: Buffer): Omit<RawAnswer, 'error'> {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: Buffer.alloc(0) };
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  return { status, headers, body };
}

/** Sends `request` (head and body as bytes) on a new connection; resolves with the answer once it is complete or the server closed. */
export function rawRequest(port: number, request: Buffer | string, timeoutMs = 30_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseRawAnswer(Buffer.concat(chunks)), ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => {
      error = `no end of the answer within ${timeoutMs} ms`;
      finish();
    }, timeoutMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // the whole answer is here once its declared length arrived (keep-alive servers do not close)
      const a = parseRawAnswer(Buffer.concat(chunks));
      const len = a.headers['content-length'];
      if (a.status && len !== undefined && a.body.length >= Number(len)) finish();
      if (
        a.status &&
        /chunked/i.test(a.headers['transfer-encoding'] ?? '') &&
        Buffer.concat(chunks).includes('\r\n0\r\n\r\n')
      )
        finish();
    });
    socket.on('error', (err) => {
      error = err.message;
      finish();
    });
    socket.on('close', finish);
    // no half-close: a request says `connection: close`, and the server closes after its answer
    socket.on('connect', () => socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request));
  });
}
