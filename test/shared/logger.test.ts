import { expect } from 'chai';
import { createLogger, lazyChild, outageLog, type Logger } from '../../shared/platform/logger.js';

/**
 * The per-delivery logger of the stage workers is made only when a line is logged at an enabled
 * level (pino's child() runs the redaction over its bindings at once); the lines it writes are the
 * child's: the bindings on every line, phone numbers and text redacted.
 */
describe('shared/logger: a child logger made on first use', () => {
  function capture(level: string): { log: Logger; lines: Array<Record<string, unknown>>; children: () => number } {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ level, service: 'test' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    let n = 0;
    const target = log as unknown as { child: (...a: unknown[]) => Logger };
    const child = target.child;
    target.child = function (this: Logger, ...a: unknown[]) {
      n++;
      return child.apply(this, a);
    };
    return { log, lines, children: () => n };
  }

  it('makes no child for calls at a disabled level or level checks, one for the first line written', () => {
    const { log, lines, children } = capture('info');
    const lazy = lazyChild(log, { messageId: 'm-1', lane: 'send' });
    lazy.debug({ user: '15551234567' }, 'not written');
    lazy.trace('not written either');
    expect(lazy.isLevelEnabled('debug')).to.equal(false);
    expect(lazy.isLevelEnabled('warn')).to.equal(true);
    expect(lazy.level).to.equal('info');
    expect(children(), 'children made before any line').to.equal(0);
    expect(lines).to.have.length(0);
    lazy.info('first');
    lazy.warn('second');
    expect(children(), 'children made after two lines').to.equal(1);
    expect(lines.map((l) => [l.msg, l.messageId, l.lane, l.service])).to.deep.equal([
      ['first', 'm-1', 'send', 'test'],
      ['second', 'm-1', 'send', 'test'],
    ]);
  });

  it('redacts what the parent redacts, in the line and in a grandchild', () => {
    const { log, lines } = capture('debug');
    const lazy = lazyChild(log, { messageId: 'm-2' });
    lazy.debug({ to: '15551234567', payload: { text: { body: 'secret' } } }, 'sending');
    lazy.child({ component: 'x' }).warn({ user: '15551234567' }, 'nested');
    expect(lines[0]).to.include({ to: '[redacted]', payload: '[redacted]', messageId: 'm-2' });
    expect(lines[1]).to.include({ user: '[redacted]', messageId: 'm-2', component: 'x' });
  });
});

/** A stream of errors while Redis is away: a line when it begins and one when it ends, not one each. */
describe('shared/logger: an outage logged once', () => {
  it('logs the first error of an outage at warn, counts the next ones, and says when it recovered', () => {
    const lines: Array<Record<string, unknown>> = [];
    const outage = outageLog(createLogger({ level: 'info', service: 'test' }, { write: (s: string) => void lines.push(JSON.parse(s)) }), 'queue');
    outage.recovered();
    expect(lines, 'no outage, nothing to say').to.deep.equal([]);
    for (let i = 0; i < 100; i++) outage.error(new Error(`connect ECONNREFUSED #${i}`));
    outage.recovered();
    outage.error(new Error('read ECONNRESET'));
    expect(lines.map(({ level, msg, err, errors }) => ({ level, msg, err, errors }))).to.deep.equal([
      { level: 40, msg: 'queue: error; until it recovers, one such line a minute at most', err: 'connect ECONNREFUSED #0', errors: 1 },
      { level: 30, msg: 'queue: recovered', err: undefined, errors: 100 },
      { level: 40, msg: 'queue: error; until it recovers, one such line a minute at most', err: 'read ECONNRESET', errors: 1 },
    ]);
  });
});
