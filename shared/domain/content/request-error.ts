/**
 * A rejected request body: the field at fault (`messages.3.text.body`, `(body)` for the whole body)
 * and a message that starts with it.
 */
import type { z } from 'zod';

export class RequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

export function join(path: string, field: string | number): string {
  return path ? `${path}.${field}` : String(field);
}

/** The first issue as a RequestError naming its field (unknown keys name the key itself). */
export function requestErrorOf(err: z.ZodError, root = ''): RequestError {
  const issue = err.issues[0];
  let field = issue.path.reduce<string>((p, k) => join(p, String(k)), root);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    field = join(field, issue.keys[0]);
    message = 'unknown field';
  } else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    message = 'is required';
  }
  field ||= '(body)';
  return new RequestError(field, `${field}: ${message}`);
}
