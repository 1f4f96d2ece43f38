import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadLua, luaArgs, luaScript } from '../../shared/platform/lua-scripts.js';
import { isolate, type Isolation } from '../support/isolation.js';

/** Every `.lua` file below `dir`, relative to it. */
function luaFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.lua'))
    .sort();
}

describe('shared: Lua scripts from .lua files', () => {
  let iso: Isolation;
  let dir: string;
  const at = (name: string) => pathToFileURL(path.join(dir, `${name}.lua`));

  before(async () => {
    iso = await isolate('lua-scripts');
    dir = mkdtempSync(path.join(tmpdir(), 'pm-lua-'));
    writeFileSync(path.join(dir, 'twice.lua'), 'local function twice(x) return x * 2 end\n');
    writeFileSync(path.join(dir, 'inner.lua'), '--- @include "twice"\nlocal function quad(x) return twice(twice(x)) end\n');
    // `twice` comes in directly and again through `inner`: pasted once, or Lua would see two definitions of one local.
    writeFileSync(
      path.join(dir, 'layout.lua'),
      '--- @include "twice"\n--- @include "inner"\nreturn {KEYS, ARGV, tostring(quad(tonumber(ARGV[1]))), LABEL, FACTOR}\n',
    );
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await iso?.cleanup();
  });

  it('builds every script of shared/ and services/ into dist/, beside its module', () => {
    const root = process.cwd();
    for (const part of ['shared', 'services']) {
      const source = luaFiles(path.join(root, part));
      expect(source.length, `${part} has Lua scripts`).to.be.greaterThan(0);
      expect(luaFiles(path.join(root, 'dist', part))).to.include.members(source);
    }
  });

  it('pastes each include once and prepends the constants', () => {
    const text = loadLua(at('layout'), { LABEL: 'a "quoted" label', FACTOR: 3 });
    expect(text.match(/local function twice/g)).to.have.length(1);
    expect(text.startsWith('local LABEL = "a \\"quoted\\" label"\nlocal FACTOR = 3\n')).to.equal(true);
    expect(text).not.to.contain('@include');
  });

  it('passes keys and arguments by name, in the order of the spec, the items of a batch after the fixed ones', async () => {
    const script = luaScript({
      name: 'postmasterTestLayout',
      file: at('layout'),
      constants: { LABEL: 'x', FACTOR: 3 },
      keys: ['first', 'second'],
      args: ['n', 'word'],
      each: { keys: ['item'], args: ['a', 'b'] },
    });
    const run = script.bind(iso.redis);
    const p = iso.redisKeyPrefix;
    const r = await run({
      keys: { second: `${p}:k2`, first: `${p}:k1` },
      args: { word: 'w', n: 5 },
      each: [
        { keys: { item: `${p}:i1` }, args: { b: 'b1', a: 'a1' } },
        { keys: { item: `${p}:i2` }, args: { a: 'a2', b: 'b2' } },
      ],
    });
    expect(r).to.deep.equal([[`${p}:k1`, `${p}:k2`, `${p}:i1`, `${p}:i2`], ['5', 'w', 'a1', 'b1', 'a2', 'b2'], '20', 'x', 3]);
  });

  it('defines a script without items with its number of keys', async () => {
    const script = luaScript({ name: 'postmasterTestFixed', file: at('layout'), constants: { LABEL: 'y', FACTOR: 1 }, keys: ['only'], args: ['n'] });
    const r = (await script.bind(iso.redis)({ keys: { only: `${iso.redisKeyPrefix}:o` }, args: { n: 1 } })) as unknown[];
    expect(r.slice(0, 3)).to.deep.equal([[`${iso.redisKeyPrefix}:o`], ['1'], '4']);
  });

  it('refuses a missing argument, naming it', () => {
    expect(() => luaArgs(['a', 'b'], { a: 1 } as never)).to.throw(TypeError, /"b" is missing/);
  });

  it('refuses a second script under a name already taken by another text', () => {
    luaScript({ name: 'postmasterTestClash', file: at('twice') });
    expect(() => luaScript({ name: 'postmasterTestClash', file: at('inner') })).to.throw(/two Lua scripts are named postmasterTestClash/);
  });
});
