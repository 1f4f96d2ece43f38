import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { read, repoPath } from './repo.js';

/** The major of every place that names the project's Node.js line. */
function majors(): Record<string, number> {
  const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; devDependencies: Record<string, string> };
  const first = (re: RegExp, text: string, where: string): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`${where}: no Node.js version found by ${re}`);
    return Number(m[1]);
  };
  return {
    '.nvmrc': first(/^(\d+)/, read('.nvmrc').trim(), '.nvmrc'),
    'package.json engines': first(/^>=\s*(\d+)/, pkg.engines.node, 'engines.node'),
    '@types/node': first(/^\D*(\d+)/, pkg.devDependencies['@types/node'], '@types/node'),
    'Dockerfile NODE_IMAGE': first(/^ARG NODE_IMAGE=node:(\d+)-/m, read('Dockerfile'), 'Dockerfile'),
    'scripts/use-node.sh': first(/^NODE_VERSION=(\d+)\./m, read('scripts/use-node.sh'), 'scripts/use-node.sh'),
  };
}

/** Runs a copy of scripts/check-node.mjs beside a package.json that asks for `range`. */
function checkNode(range: string): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'check-node-'));
  mkdirSync(path.join(dir, 'scripts'));
  copyFileSync(repoPath('scripts/check-node.mjs'), path.join(dir, 'scripts', 'check-node.mjs'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ engines: { node: range } }));
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(dir, 'scripts', 'check-node.mjs')], { timeout: 20_000 }, (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
    });
  });
}

describe('infra: the Node.js line', () => {
  it('is the same major in .nvmrc, engines, @types/node, the image and the CI fetch', () => {
    const found = majors();
    expect(new Set(Object.values(found)).size, JSON.stringify(found)).to.equal(1);
  });

  it('runs these tests on that line (CI puts the fetched Node first on PATH)', () => {
    expect(Number(process.versions.node.split('.')[0])).to.be.at.least(majors()['.nvmrc']);
  });

  it('refuses an older Node in one line naming the version needed, with a non-zero exit', async () => {
    const { code, out } = await checkNode('>=999.1.0');
    expect(code).to.equal(1);
    expect(out.trim().split('\n')).to.have.length(1);
    expect(out).to.contain('needs Node.js >=999.1.0').and.contain(process.version).and.contain('scripts/use-node.sh');
  });

  it('lets the same or a newer Node through silently', async () => {
    const [major, minor] = process.versions.node.split('.');
    expect(await checkNode(`>=${major}.${minor}.0`)).to.deep.equal({ code: 0, out: '' });
    expect(await checkNode('>=1')).to.deep.equal({ code: 0, out: '' });
  });

  it('wires the check before start and test', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    for (const s of ['prestart', 'pretest']) expect(scripts[s], s).to.equal('node scripts/check-node.mjs');
  });
});
