import assert from 'node:assert/strict';
import { WorkflowLock } from '../../lib/trading/workflow-lock';

/** lib/trading/workflow-lock.ts: the trading workflows' one-at-a-time section. */
describe('WorkflowLock', () => {
  const tick = () => new Promise((r) => setImmediate(r));

  it('lets one holder in at a time, in arrival order, and passes the lock on without a gap', async () => {
    const lock = new WorkflowLock();
    const log: string[] = [];
    let inside = 0;
    const gates = new Map<string, () => void>();
    const holder = (name: string) =>
      lock.run(async () => {
        inside++;
        assert.equal(inside, 1, `${name} is alone inside`);
        log.push(`${name} in`);
        await new Promise<void>((r) => gates.set(name, r));
        log.push(`${name} out`);
        inside--;
        return name;
      });
    const a = holder('a');
    const b = holder('b');
    const c = holder('c');
    await tick();
    assert.deepEqual(log, ['a in'], 'b and c wait');
    assert.equal(lock.locked, true);
    gates.get('a')!();
    assert.equal(await a, 'a');
    await tick();
    // A fourth caller arriving now queues behind c: the lock was never free after a left.
    const d = holder('d');
    gates.get('b')!();
    await b;
    await tick();
    gates.get('c')!();
    await c;
    await tick();
    gates.get('d')!();
    await d;
    assert.deepEqual(log, ['a in', 'a out', 'b in', 'b out', 'c in', 'c out', 'd in', 'd out']);
    assert.equal(lock.locked, false, 'free once the last holder left');
  });

  it('a holder that fails releases the lock and its caller gets the error', async () => {
    const lock = new WorkflowLock();
    const failing = lock.run(async () => {
      throw new Error('refused');
    });
    const next = lock.run(async () => 'ran');
    await assert.rejects(failing, /refused/);
    assert.equal(await next, 'ran');
    assert.equal(lock.locked, false);
    // A holder that throws synchronously (before returning a promise) is not a holder at all.
    const syncFail = () => lock.run((() => {
      throw new Error('at once');
    }) as () => Promise<void>);
    assert.throws(syncFail, /at once/);
    assert.equal(lock.locked, false, 'and leaves the lock free');
    assert.equal(await lock.run(async () => 'after'), 'after');
  });
});
