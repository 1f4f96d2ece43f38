/**
 * Bounds on an outbound HTTP call: its response body read with a byte cap (undici reads whatever the
 * server sends, so a peer answering with an endless or huge body would otherwise fill this process's
 * memory), and one deadline over the whole call.
 */
import type { Dispatcher } from 'undici';

export class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';

  constructor(readonly limit: number) {
    super(`answer larger than ${limit} bytes`);
  }
}

/** The whole call ran past its deadline and was aborted. */
export class CallDeadlineError extends Error {
  override readonly name = 'CallDeadlineError';

  constructor(readonly ms: number) {
    super(`call not finished within ${ms} ms`);
  }
}

/** A whole answer: its status, headers and body; `text` null when the body was over the cap (not read). */
export interface CappedAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  text: string | null;
}

export interface CappedPost {
  /** Needed when `dispatcher` is an agent (not a pool of one origin). */
  origin?: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * POSTs and reads the whole answer as UTF-8 text, bounded twice:
 * - **one deadline over the call** (`timeoutMs`: connect, headers and body together). undici's
 *   headersTimeout and bodyTimeout are per phase (and per chunk), so a body trickled byte by byte
 *   would never trip them; past the deadline the request is aborted and the call rejects with
 *   CallDeadlineError (also when it was still waiting for a connection);
 * - **a cap on the body** (`maxBytes`, 0: none): past it, or at a declared Content-Length over it,
 *   the request is aborted (the connection dropped) and the answer comes back with `text: null`,
 *   whose status the caller weighs.
 * Other failures (refused, reset) reject with undici's own error.
 * Built on undici's dispatch API rather than `request()`: this runs for every message sent, and
 * `request()` makes a Readable stream of each body and wants an AbortSignal for the deadline,
 * both of which cost more than the call's own work on this path. The dispatch API is undici's
 * lower-level one and may change in its major versions (test/sender/http-deadlines.test.ts
 * covers each bound).
 */
export function postCapped(dispatcher: Dispatcher, req: CappedPost, limits: { timeoutMs: number; maxBytes: number }): Promise<CappedAnswer> {
  const cap = limits.maxBytes > 0 ? limits.maxBytes : Infinity;
  return new Promise<CappedAnswer>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | null = null;
    let settled = false;
    let statusCode = 0;
    let headers: CappedAnswer['headers'] = {};
    let chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const finish = (err: Error | null): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      // The usual answer is one chunk: no copy.
      else
        resolve({ statusCode, headers, text: over ? null : chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, size).toString('utf8') });
      return true;
    };
    const deadline = (): CallDeadlineError => new CallDeadlineError(limits.timeoutMs);
    const timer = setTimeout(() => {
      const err = deadline();
      if (finish(err)) controller?.abort(err);
    }, limits.timeoutMs);
    const overCap = (c: Dispatcher.DispatchController): void => {
      over = true;
      chunks = [];
      finish(null);
      c.abort(new ResponseTooLargeError(limits.maxBytes));
    };
    try {
      dispatcher.dispatch(
        { method: 'POST', origin: req.origin, path: req.path, headers: req.headers, body: req.body },
        {
          onRequestStart(c) {
            controller = c;
            if (settled) c.abort(deadline()); // the deadline passed while it waited for a connection
          },
          onResponseStart(c, status, h) {
            if (status < 200 || settled) return; // a 1xx: the answer follows
            statusCode = status;
            headers = h;
            const declared = h['content-length'];
            if (typeof declared === 'string' && Number(declared) > cap) overCap(c);
          },
          onResponseData(c, chunk) {
            if (settled) return;
            size += chunk.length;
            if (size > cap) overCap(c);
            else chunks.push(chunk);
          },
          onResponseEnd() {
            finish(null);
          },
          onResponseError(_c, err) {
            finish(err);
          },
        },
      );
    } catch (err) {
      finish(err as Error);
    }
  });
}
