import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OwnWrites } from './own-writes.js';

type Step =
  ['begin', string] | ['end', string, string | undefined, boolean] | ['event', string, string, boolean];

/** Writes the version `rv` of object `name` (begin, then end with it) and expects end() to say `requeue`. */
const write = (name: string, rv: string | undefined, requeue = false): Step[] => [
  ['begin', name],
  ['end', name, rv, requeue],
];

test('echoes of own writes are recognised once; other versions are queued', () => {
  const cases: Array<{ name: string; steps: Step[] }> = [
    { name: 'the echo after the answer', steps: [...write('a', '10'), ['event', 'a', '10', true]] },
    {
      name: 'a second event of the same version',
      steps: [...write('a', '10'), ['event', 'a', '10', true], ['event', 'a', '10', false]],
    },
    { name: 'another version after the write', steps: [...write('a', '10'), ['event', 'a', '11', false]] },
    {
      name: 'another version first, then the recorded one',
      steps: [...write('a', '10'), ['event', 'a', '9', false], ['event', 'a', '10', false]],
    },
    { name: 'another object', steps: [...write('a', '10'), ['event', 'b', '10', false]] },
    { name: 'nothing written', steps: [['event', 'a', '10', false]] },
    {
      name: 'a later write replaces the earlier version',
      steps: [...write('a', '10'), ...write('a', '12'), ['event', 'a', '12', true]],
    },
    {
      name: 'the echo before the answer: held, and end() needs no requeue',
      steps: [
        ['begin', 'a'],
        ['event', 'a', '10', true],
        ['end', 'a', '10', false],
        ['event', 'a', '10', false],
      ],
    },
    {
      name: 'someone else’s change during the write: end() asks for a requeue',
      steps: [
        ['begin', 'a'],
        ['event', 'a', '9', true],
        ['end', 'a', '10', true],
        ['event', 'a', '10', true],
      ],
    },
    {
      name: 'the write failed after an event came: requeue',
      steps: [
        ['begin', 'a'],
        ['event', 'a', '9', true],
        ['end', 'a', undefined, true],
      ],
    },
    {
      name: 'the write failed, no event: nothing to do',
      steps: [...write('a', undefined), ['event', 'a', '9', false]],
    },
    {
      name: 'more events during one write than are held: requeue',
      steps: [
        ['begin', 'a'],
        ...Array.from({ length: 20 }, (): Step => ['event', 'a', '10', true]),
        ['end', 'a', '10', true],
      ],
    },
  ];
  for (const c of cases) {
    const own = new OwnWrites();
    c.steps.forEach((step, i) => {
      const where = `${c.name}, step ${i}`;
      if (step[0] === 'begin') own.begin('Secret', 'ns', step[1]);
      else if (step[0] === 'end') assert.equal(own.end('Secret', 'ns', step[1], step[2]), step[3], where);
      else assert.equal(own.isEcho('Secret', 'ns', step[1], step[2]), step[3], where);
    });
  }
});

test('kind and namespace are part of the identity', () => {
  const own = new OwnWrites();
  own.begin('Secret', 'ns', 'a');
  own.end('Secret', 'ns', 'a', '10');
  assert.equal(own.isEcho('ServiceAccount', 'ns', 'a', '10'), false);
  assert.equal(own.isEcho('Secret', 'other', 'a', '10'), false);
  assert.equal(own.isEcho('Secret', 'ns', 'a', '10'), true);
});

test('bounded: the oldest entries go past maxEntries, and every entry after ttlMs', () => {
  let clock = 0;
  const own = new OwnWrites(3, 1000, () => clock);
  for (const name of ['a', 'b', 'c', 'd']) {
    own.begin('Secret', 'ns', name);
    own.end('Secret', 'ns', name, '1');
  }
  assert.equal(own.size, 3);
  assert.equal(own.isEcho('Secret', 'ns', 'a', '1'), false, 'the oldest was dropped');
  assert.equal(own.isEcho('Secret', 'ns', 'd', '1'), true);
  clock = 1001;
  assert.equal(own.isEcho('Secret', 'ns', 'b', '1'), false, 'aged out');
  assert.equal(own.size, 0);
});

test('write() brackets a write: its echo is recognised, a change by someone else during it requeues, errors pass through', async () => {
  const own = new OwnWrites();
  const secret = (rv: string) => ({ metadata: { namespace: 'ns', name: 'a', resourceVersion: rv } });
  let requeued = 0;
  const requeue = () => (requeued += 1);

  assert.deepEqual(await own.write('Secret', 'ns', 'a', async () => secret('10'), requeue), secret('10'));
  assert.equal(own.isEchoEvent('Secret', secret('10'), 'update'), true, 'its echo');
  assert.equal(requeued, 0);

  const during = own.write(
    'Secret',
    'ns',
    'a',
    async () => {
      assert.equal(own.isEchoEvent('Secret', secret('11'), 'update'), true, 'held while the write runs');
      return secret('12');
    },
    requeue,
  );
  await during;
  assert.equal(requeued, 1, 'version 11 was someone else’s');

  await assert.rejects(
    own.write('Secret', 'ns', 'a', () => Promise.reject(new Error('refused')), requeue),
    /refused/,
  );
  assert.equal(requeued, 1, 'a failed write with no event meanwhile queues nothing');
});

test('isEchoEvent: a delete is never an echo', () => {
  const own = new OwnWrites();
  own.begin('Secret', 'ns', 'a');
  own.end('Secret', 'ns', 'a', '10');
  const obj = { metadata: { namespace: 'ns', name: 'a', resourceVersion: '10' } };
  assert.equal(own.isEchoEvent('Secret', obj, 'delete'), false);
  assert.equal(own.isEchoEvent('Secret', obj, 'add'), true);
});
