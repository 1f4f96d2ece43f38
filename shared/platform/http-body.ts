/**
 * Bounds on an outbound HTTP call: its response body read with a byte cap (undici reads whatever the
 * server sends, so a peer answering with an endless or huge body would otherwise fill this process's
 * memory), and one deadline over the whole call.
 */
import type { Readable } from 'node:stream';

export class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';

  constructor(readonly limit: number) {
    super(`answer larger than ${limit} bytes`);
  }
}

/** An undici response body (a Readable): what readCapped needs of it. */
export type BodyStream = Pick<Readable, 'on' | 'removeListener' | 'destroy'>;

const ignore = (): void => {};

/**
 * The body as UTF-8 text; rejects with ResponseTooLargeError past `maxBytes` (0: no cap), without
 * reading further (the stream is destroyed, so the connection is dropped). A declared
 * Content-Length over the cap fails at once. Other errors of the stream (an abort, a reset)
 * propagate as they are; a stream that closes before its end rejects.
 * Read with 'data' events rather than an async iterator: this runs for every provider call, and
 * the iterator's promises and end-of-stream watcher cost more than the read itself.
 */
export function readCapped(body: BodyStream, maxBytes: number, contentLength?: string | string[]): Promise<string> {
  const cap = maxBytes > 0 ? maxBytes : Infinity;
  if (typeof contentLength === 'string' && Number(contentLength) > cap) {
    body.on('error', ignore);
    body.destroy();
    return Promise.reject(new ResponseTooLargeError(maxBytes));
  }
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (err: Error | null): void => {
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('close', onClose);
      body.removeListener('error', onError);
      // A late error of a destroyed stream must find a listener (an 'error' without one throws).
      body.on('error', ignore);
      if (err) return reject(err);
      // The usual answer is one chunk: no copy.
      resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, size).toString('utf8'));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= cap) return void chunks.push(chunk);
      settle(new ResponseTooLargeError(maxBytes));
      body.destroy();
    };
    const onEnd = (): void => settle(null);
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => settle(Object.assign(new Error('the answer closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
  });
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
