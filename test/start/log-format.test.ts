import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePort } from '../../scripts/lib/ports.js';
import { logFormat, prettyLine } from '../../scripts/start/log-format.js';
import { createLogger } from '../../shared/platform/logger.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ESC = '\u001b[';

/** The lines the real simulator writes from its start to its stop. */
async function simulatorLines(): Promise<string[]> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(DIST, 'services', 'simulator', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', SIMULATOR_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000);
  createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l);
    if (lines.length === 1) child.kill('SIGTERM');
  });
  await once(child, 'close');
  clearTimeout(deadline);
  return lines;
}

/** Lines a service's logger writes (shared/platform/logger.ts, as every service makes it). */
function serviceLines(): string[] {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', service: 'sender', replica: 'sender-0' }, { write: (s: string) => void lines.push(s.trimEnd()) });
  log.child({ component: 'send-shards' }).info({ stage: 'send', shard: 3 }, 'shard taken over');
  log.error(new Error('provider unreachable'));
  log.warn({ signal: 'SIGTERM' }, 'second signal: exiting now');
  return lines;
}

describe("npm start: how the processes' logs are shown", () => {
  it('picks pretty on a terminal, JSON in a pipe, and what LOG_FORMAT says over both', () => {
    expect(logFormat({}, true)).to.equal('pretty');
    expect(logFormat({}, false)).to.equal('json');
    expect(logFormat({ LOG_FORMAT: 'json' }, true)).to.equal('json');
    expect(logFormat({ LOG_FORMAT: 'pretty' }, false)).to.equal('pretty');
    expect(() => logFormat({ LOG_FORMAT: 'yaml' }, true)).to.throw(/LOG_FORMAT must be json or pretty/);
  });

  it("the simulator writes the fleet's JSON lines: ISO 8601 UTC times, `service`", async () => {
    const lines = await simulatorLines();
    expect(lines.map((l) => JSON.parse(l).msg)).to.deep.equal(['simulator listening', 'simulator stopping', 'simulator stopped']);
    for (const l of lines) {
      const o = JSON.parse(l);
      expect(o.time, l).to.match(ISO_UTC);
      expect(o.service).to.equal('simulator');
    }
  });

  it('turns each JSON line into one line behind the process name, with the level name and UTC time', async () => {
    const [listening] = await simulatorLines();
    const sim = prettyLine('simulator', { colorize: false, width: 12 })(listening);
    const time = JSON.parse(listening).time.slice(11);
    expect(sim).to.match(/^\[simulator\]\s+\[\d\d:\d\d:\d\d\.\d{3}Z\] INFO: simulator listening \{"url":"http:\/\/127\.0\.0\.1:\d+"/);
    expect(sim).to.contain(`[${time}]`);
    expect(sim).not.to.contain('"service"');

    const format = prettyLine('sender', { colorize: false, width: 12 });
    const [taken, failed, warned] = serviceLines().map(format);
    expect(taken).to.match(/^\[sender\] {7}\[\d\d:\d\d:\d\d\.\d{3}Z\] INFO: shard taken over \{"component":"send-shards","stage":"send","shard":3\}$/);
    expect(taken.indexOf('[', 1), 'prefixes of one width').to.equal(sim.indexOf('[', 1));
    expect(taken).not.to.contain('replica');
    expect(failed).to.match(/ ERROR: provider unreachable \{"err":\{.*"message":"provider unreachable"/);
    expect(failed).to.contain('"stack":"Error: provider unreachable\\n');
    expect(warned).to.match(/ WARN: second signal: exiting now \{"signal":"SIGTERM"\}$/);
    for (const line of [sim, taken, failed, warned]) expect(line).not.to.contain('\n');
  });

  it('keeps a line that is not JSON as it is, behind the prefix, and colours only when asked', () => {
    const [taken] = serviceLines();
    expect(prettyLine('ingress', { colorize: false })('    at file:///app/x.js:1:1')).to.equal('[ingress]     at file:///app/x.js:1:1');
    expect(prettyLine('ingress', { colorize: false })(taken)).not.to.contain(ESC);
    const coloured = prettyLine('ingress', { colorize: true })(taken);
    expect(coloured.startsWith(ESC), coloured).to.equal(true);
    expect(coloured).to.contain('INFO');
  });
});
