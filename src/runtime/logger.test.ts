import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, type LogLevel } from './logger.js';

function capture(level: LogLevel) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger(level, stream) };
}

const flush = () => new Promise((r) => setImmediate(r));

test('each level writes its own and the more severe lines as JSON, with meta and child fields', async () => {
  const cases: Array<[LogLevel, string[]]> = [
    ['error', ['error']],
    ['warn', ['error', 'warn']],
    ['info', ['error', 'warn', 'info']],
    ['debug', ['error', 'warn', 'info', 'debug']],
  ];
  for (const [level, want] of cases) {
    const { lines, logger } = capture(level);
    const child = logger.child({ controller: 'c1' });
    for (const l of ['error', 'warn', 'info', 'debug'] as const) child[l](`${l} line`, { n: 1 });
    logger.info('no meta');
    await flush();
    const fromChild = lines.filter((l) => l.controller === 'c1');
    assert.deepEqual(
      fromChild.map((l) => l.level),
      want,
      level,
    );
    for (const l of fromChild) {
      assert.equal(l.message, `${String(l.level)} line`);
      assert.equal(l.n, 1);
      assert.equal(typeof l.timestamp, 'string');
    }
    const plain = lines.filter((l) => l.message === 'no meta');
    assert.equal(plain.length, want.includes('info') ? 1 : 0, `${level}: a line without meta`);
  }
});
