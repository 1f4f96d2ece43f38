/**
 * The machine-written part of a hand-written doc: the text between `<!-- <name>:begin -->` and
 * `<!-- <name>:end -->`. A run (`npm run bench`, `npm run chaos`) replaces only that block, so the
 * prose around it stays the author's and a run never appends: the previous results live in git.
 */
import { readFile, writeFile } from 'node:fs/promises';

export function markers(name: string): { begin: string; end: string } {
  return { begin: `<!-- ${name}:begin -->`, end: `<!-- ${name}:end -->` };
}

/** `doc` with the block `name` replaced by `body`; throws, naming the marker, when the doc lacks it. */
export function replaceBlock(doc: string, name: string, body: string): string {
  const { begin, end } = markers(name);
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`the doc has no block "${begin}" … "${end}" (in that order) to write into`);
  if (doc.indexOf(begin, from + 1) >= 0) throw new Error(`the doc has "${begin}" more than once`);
  return `${doc.slice(0, from + begin.length)}\n${body.trim()}\n${doc.slice(to)}`;
}

/** Rewrites the block `name` of the file at `path` in place. */
export async function writeBlock(path: string, name: string, body: string): Promise<void> {
  await writeFile(path, replaceBlock(await readFile(path, 'utf8'), name, body));
}
