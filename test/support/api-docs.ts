/**
 * The request examples of docs/API.md, as the tests read them: the body of each curl to `$API/…`
 * (a `-d '…'` body, or `-d "$VAR"` with `VAR='…'` set in the same block), by path and method.
 */

export interface RequestExample {
  /** The heading the example is under (`#### text`, `## POST /v1/messages/batch`). */
  title: string;
  method: string;
  /** Path without the query, e.g. `/v1/messages`. */
  path: string;
  body: unknown;
}

/** The body of one curl command, or undefined when it sends none. */
function bodyOf(command: string, block: string): string | undefined {
  const quoted = /-d '([^']*)'/.exec(command)?.[1];
  if (quoted !== undefined) return quoted;
  const variable = /-d "\$(\w+)"/.exec(command)?.[1];
  if (variable === undefined) return undefined;
  const value = new RegExp(`^${variable}='([^']*)'`, 'm').exec(block)?.[1];
  if (value === undefined) throw new Error(`-d "$${variable}" without ${variable}='…' in its block`);
  return value;
}

/** Every curl to `$API` with a body, in every ```sh block, under the heading it follows. */
export function requestExamples(markdown: string): RequestExample[] {
  const out: RequestExample[] = [];
  let title = '';
  const parts = markdown.split(/^```(\w*)\n([\s\S]*?)^```$/m);
  // split() with two groups gives [text, lang, code, text, lang, code, …].
  for (let i = 0; i < parts.length; i += 3) {
    const headings = [...parts[i].matchAll(/^#+ (.+)$/gm)];
    if (headings.length) title = headings[headings.length - 1][1];
    const [lang, block] = [parts[i + 1], parts[i + 2]];
    if (lang !== 'sh' || block === undefined) continue;
    for (const command of block.split(/(?=\bcurl )/).filter((c) => c.startsWith('curl '))) {
      const path = /\$API(\/[^\s"'?]*)/.exec(command)?.[1];
      const data = path && bodyOf(command, block);
      if (!path || data === undefined) continue;
      const method = /-X (\w+)/.exec(command)?.[1] ?? 'POST';
      try {
        out.push({ title, method, path, body: JSON.parse(data) });
      } catch (err) {
        throw new Error(`docs/API.md, "${title}": the body of ${method} ${path} is not JSON: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return out;
}

export interface MessageTypeExample {
  title: string;
  body: Record<string, unknown>;
}

/** The send examples of `### Message types`, one per `####` subsection (each must have one). */
export function messageTypeExamples(markdown: string): MessageTypeExample[] {
  const start = markdown.indexOf('\n### Message types\n');
  if (start < 0) throw new Error('docs/API.md has no "### Message types" section');
  const end = markdown.indexOf('\n### ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n#### ')
    .slice(1)
    .map((part) => {
      const title = part.slice(0, part.indexOf('\n'));
      const send = requestExamples(`#### ${part}`).find((e) => e.path === '/v1/messages');
      if (!send) throw new Error(`docs/API.md, "${title}": no curl to $API/v1/messages with a -d '…' body`);
      return { title, body: send.body as Record<string, unknown> };
    });
}
