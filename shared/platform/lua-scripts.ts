/**
 * Lua scripts kept in `.lua` files beside their owners (a `lua/` folder; `npm run build` copies them
 * into dist/), read once when the owning module loads and defined on each Redis client as a command
 * with its number of keys: ioredis sends the text once per connection and EVALSHA after that,
 * falling back to EVAL by itself on NOSCRIPT (a restarted or flushed Redis).
 *
 * The TypeScript side names keys and arguments: a script's spec lists them in the order the script
 * reads KEYS and ARGV, and a call passes objects, so no caller lines positional arguments up by hand.
 * A batch script repeats a group of keys and arguments per item (`each`) after the fixed ones.
 *
 * In a file, a line `--- @include "name"` (BullMQ's syntax) pastes `name.lua` from the same folder,
 * once per script; a spec's `constants` are prepended as `local NAME = value`, so a value both sides
 * use is spelled in TypeScript only.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

export type LuaArg = string | number;

/** A group of named keys and arguments; the names of a part without any are `never`. */
type Part<F extends string, N extends string, V> = [N] extends [never] ? { [P in F]?: never } : { [P in F]: Record<N, V> };
type Group<K extends string, A extends string> = Part<'keys', K, string> & Part<'args', A, LuaArg>;

/** One call of a script: its keys and arguments by name, and per item for a batch script. */
export type LuaCall<K extends string, A extends string, EK extends string, EA extends string> = Group<K, A> &
  ([EK | EA] extends [never] ? { each?: never } : { each: Array<Group<EK, EA>> });

export interface LuaSpec<K extends string, A extends string, EK extends string, EA extends string> {
  /** The command's name on the client: one name, one text. */
  name: string;
  /** The file, relative to its owner: `new URL('./lua/x.lua', import.meta.url)`. */
  file: URL;
  /** KEYS, in order. */
  keys?: readonly K[];
  /** ARGV, in order. */
  args?: readonly A[];
  /** The keys and arguments of each item of a batch, after the fixed ones (KEYS and ARGV alike). */
  each?: { keys?: readonly EK[]; args?: readonly EA[] };
  constants?: Record<string, LuaArg>;
}

/** A script bound to a client (LuaScript.bind). */
export type LuaFn<S> = S extends LuaScript<infer K, infer A, infer EK, infer EA> ? (call: LuaCall<K, A, EK, EA>) => Promise<unknown> : never;

type Command = (...keysAndArgs: Array<string | number>) => Promise<unknown>;

/**
 * The values of `names`, in that order, as Redis arguments. Throws on a missing one: a script would
 * otherwise read every later argument one place off.
 */
export function luaArgs<N extends string>(names: readonly N[], values: Record<N, LuaArg>): string[] {
  return names.map((n) => {
    const v = values[n] as LuaArg | undefined;
    if (v === undefined) throw new TypeError(`Lua argument "${n}" is missing`);
    return String(v);
  });
}

/** The text of a script file, its includes pasted in and its constants prepended. */
export function loadLua(file: URL, constants: Record<string, LuaArg> = {}): string {
  const seen = new Set<string>();
  const expand = (f: URL): string => {
    seen.add(f.href);
    return readFileSync(f, 'utf8').replace(/^--- @include "([^"]+)"[ \t]*$/gm, (_line, name: string) => {
      const inc = new URL(`${name}.lua`, f);
      return seen.has(inc.href) ? '' : expand(inc);
    });
  };
  const prelude = Object.entries(constants).map(([k, v]) => `local ${k} = ${typeof v === 'number' ? v : JSON.stringify(v)}\n`);
  return prelude.join('') + expand(file);
}

const defined = new Map<string, string>();

/** A script of a `.lua` file, read now; `bind` defines it on a client. */
export class LuaScript<K extends string, A extends string, EK extends string, EA extends string> {
  readonly lua: string;
  /** The number of keys, when it does not depend on the call (no keys per item). */
  private readonly fixedKeys: number | undefined;

  constructor(readonly spec: LuaSpec<K, A, EK, EA>) {
    this.lua = loadLua(spec.file, spec.constants);
    const prior = defined.get(spec.name);
    if (prior !== undefined && prior !== this.lua) throw new Error(`two Lua scripts are named ${spec.name}`);
    defined.set(spec.name, this.lua);
    this.fixedKeys = spec.each?.keys?.length ? undefined : (spec.keys?.length ?? 0);
  }

  /** The script as a function of `redis` (defined on it once: later binds reuse the command). */
  bind(redis: Redis): (call: LuaCall<K, A, EK, EA>) => Promise<unknown> {
    const client = redis as unknown as Record<string, Command | undefined>;
    const { name } = this.spec;
    if (typeof client[name] !== 'function') redis.defineCommand(name, { lua: this.lua, numberOfKeys: this.fixedKeys });
    return (call) => {
      const { keys, args } = this.keysAndArgs(call);
      const command = client[name] as Command;
      return this.fixedKeys === undefined ? command.call(redis, keys.length, ...keys, ...args) : command.call(redis, ...keys, ...args);
    };
  }

  /** KEYS and ARGV of a call, in the spec's order. */
  private keysAndArgs(call: LuaCall<K, A, EK, EA>): { keys: string[]; args: string[] } {
    const { spec } = this;
    const c = call as { keys?: Record<K, string>; args?: Record<A, LuaArg>; each?: Array<{ keys?: Record<EK, string>; args?: Record<EA, LuaArg> }> };
    const keys = luaArgs(spec.keys ?? [], c.keys ?? ({} as Record<K, string>));
    const args = luaArgs(spec.args ?? [], c.args ?? ({} as Record<A, LuaArg>));
    for (const item of c.each ?? []) {
      keys.push(...luaArgs(spec.each?.keys ?? [], item.keys ?? ({} as Record<EK, string>)));
      args.push(...luaArgs(spec.each?.args ?? [], item.args ?? ({} as Record<EA, LuaArg>)));
    }
    return { keys, args };
  }
}

/** Reads the script of `spec.file`; the names of its keys and arguments are inferred from the spec. */
export function luaScript<const K extends string = never, const A extends string = never, const EK extends string = never, const EA extends string = never>(
  spec: LuaSpec<K, A, EK, EA>,
): LuaScript<K, A, EK, EA> {
  return new LuaScript(spec);
}
