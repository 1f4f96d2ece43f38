/**
 * Bounds on an outbound HTTP call: its response body read with a byte cap (undici reads whatever the
 * server sends, so a peer answering with an endless or huge body would otherwise fill this process's
 * memory), and one deadline over the whole call.
 */

export class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';

  constructor(readonly limit: number) {
    super(`answer larger than ${limit} bytes`);
  }
}

/** An undici response body (a Readable): what readCapped needs of it. */
export interface BodyStream extends AsyncIterable<Buffer> {
  destroy(err?: Error): unknown;
}

/**
 * The body as UTF-8 text; rejects with ResponseTooLargeError past `maxBytes` (0: no cap), without
 * reading further (the connection is dropped). A declared Content-Length over the cap fails at once.
 * Other errors of the stream (an abort, a reset) propagate as they are.
 */
export async function readCapped(body: BodyStream, maxBytes: number, contentLength?: string | string[]): Promise<string> {
  const cap = maxBytes > 0 ? maxBytes : Infinity;
  if (typeof contentLength === 'string' && Number(contentLength) > cap) {
    body.destroy();
    throw new ResponseTooLargeError(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    // Leaving the loop by a throw makes the iterator destroy the stream.
    if (size > cap) throw new ResponseTooLargeError(maxBytes);
    chunks.push(chunk);
  }
  // The usual answer is one chunk: no copy.
  return chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, size).toString('utf8');
}

/** The whole call ran past its deadline and was aborted (`cause`: what the abort made it throw). */
export class CallDeadlineError extends Error {
  override readonly name = 'CallDeadlineError';

  constructor(
    readonly ms: number,
    options?: { cause?: unknown },
  ) {
    super(`call not finished within ${ms} ms`, options);
  }
}

/**
 * Runs `call` with a signal that aborts it after `ms`: one deadline over connect, headers and body
 * together. undici's headersTimeout and bodyTimeout are per phase (and per chunk), so a body trickled
 * byte by byte would never trip them. The timer is cleared as soon as the call ends (unlike
 * AbortSignal.timeout's, which would live on for the full timeout after every call).
 */
export async function withCallDeadline<T>(ms: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), ms);
  try {
    return await call(deadline.signal);
  } catch (err) {
    throw deadline.signal.aborted ? new CallDeadlineError(ms, { cause: err }) : err;
  } finally {
    clearTimeout(timer);
  }
}
