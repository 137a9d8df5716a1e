import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairLimiter } from './fair-limiter.js';

describe('FairLimiter', () => {
  it('with capacity 1: runs one holder at a time and serves waiting owners in turn, not in arrival order', async () => {
    const slot = new FairLimiter(1);
    const order: string[] = [];
    let running = 0;
    let release!: () => void;
    const first = slot.run('a', async () => {
      order.push('a1');
      await new Promise<void>((resolve) => (release = resolve));
    });
    const job = (name: string) => async () => {
      running++;
      assert.equal(running, 1, 'two holders at once');
      order.push(name);
      await new Promise((resolve) => setTimeout(resolve, 1));
      running--;
      return name;
    };
    const rest = [
      slot.run('a', job('a2')),
      slot.run('a', job('a3')),
      slot.run('a', job('a4')),
      slot.run('b', job('b1')),
      slot.run('c', job('c1')),
      slot.run('b', job('b2')),
    ];
    release();
    await first;
    assert.deepEqual(await Promise.all(rest), ['a2', 'a3', 'a4', 'b1', 'c1', 'b2']);
    assert.deepEqual(order, ['a1', 'a2', 'b1', 'c1', 'a3', 'b2', 'a4']);
  });

  it('frees the slot when the work fails', async () => {
    const slot = new FairLimiter(1);
    await assert.rejects(
      slot.run('a', () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(await slot.run('a', () => Promise.resolve('next')), 'next');
  });
});

describe('FairLimiter with capacity 3', () => {
  it("never runs more than 3 at once, and a second owner waits for one slot, not for the first owner's queue", async () => {
    const limiter = new FairLimiter(3);
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const job = (name: string) => async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(name);
      await new Promise((resolve) => setTimeout(resolve, 2));
      running--;
    };
    const tenant = Array.from({ length: 30 }, (_, i) => limiter.run('tenant', job(`t${i}`)));
    const other = limiter.run('other', job('o'));
    assert.equal(limiter.queued, 28);
    await Promise.all([...tenant, other]);
    assert.equal(peak, 3);
    assert.equal(limiter.active, 0);
    // Owners take turns: the other owner starts with the first or second freed slot, not after all 30.
    assert.ok(order.indexOf('o') <= 4, `other started at position ${order.indexOf('o')}`);
  });

  for (const capacity of [0, -1, 1.5, NaN]) {
    it(`refuses capacity ${capacity}`, () => assert.throws(() => new FairLimiter(capacity), /capacity/));
  }
});
