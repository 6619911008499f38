import { DatabaseBusyError, DatabaseGate } from '../../../service/db/gate';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A statement the test finishes by hand. */
function heldStatement(): { run: () => Promise<string>; finish: () => void; started: () => boolean } {
  let finish: () => void = () => undefined;
  let started = false;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    run: async () => {
      started = true;
      await done;
      return 'ok';
    },
    finish: () => finish(),
    started: () => started,
  };
}

describe('DatabaseGate', () => {
  test('runs at most the limit at once; waiting work already admitted goes before new checkouts', async () => {
    // GIVEN a gate of 2 with both turns taken, a new checkout and an admitted statement queued behind
    const gate = new DatabaseGate({ maxConcurrent: 2, latencyBudgetMs: 1_000, queueBudgetMs: 1_000 });
    const [a, b, fresh, admitted] = [heldStatement(), heldStatement(), heldStatement(), heldStatement()];
    const running = [gate.run('new', a.run), gate.run('admitted', b.run)];
    const queuedFresh = gate.run('new', fresh.run);
    const queuedAdmitted = gate.run('admitted', admitted.run);
    await sleep(5);
    expect([a.started(), b.started(), fresh.started(), admitted.started()]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(gate.queued).toBe(2);
    // WHEN one finishes THEN the admitted statement takes its turn first, then the new checkout
    a.finish();
    await sleep(5);
    expect([admitted.started(), fresh.started()]).toEqual([true, false]);
    b.finish();
    await sleep(5);
    expect(fresh.started()).toBe(true);
    admitted.finish();
    fresh.finish();
    await expect(Promise.all([...running, queuedFresh, queuedAdmitted])).resolves.toEqual([
      'ok',
      'ok',
      'ok',
      'ok',
    ]);
  });

  test('refuses a new checkout that would wait longer than the queue budget, and says it is busy', async () => {
    // GIVEN one turn, taken by a statement that holds it, and a queue budget of 1 ms
    const gate = new DatabaseGate({ maxConcurrent: 1, latencyBudgetMs: 1_000, queueBudgetMs: 1 });
    const held = heldStatement();
    const running = gate.run('admitted', held.run);
    await sleep(1);
    // THEN a new checkout is refused at once, and the gate reports itself busy for early shedding
    expect(gate.busy).toBe(true);
    await expect(gate.run('new', async () => 'never')).rejects.toThrow(DatabaseBusyError);
    await expect(gate.run('new', async () => 'never')).rejects.toThrow(/the database is busy/);
    // ...while admitted work still waits its turn instead of failing
    const admitted = gate.run('admitted', async () => 'recorded');
    held.finish();
    await expect(Promise.all([running, admitted])).resolves.toEqual(['ok', 'recorded']);
    expect(gate.busy).toBe(false);
  });

  test('runs fewer statements at once while they are slower than the latency budget, and more once fast again', async () => {
    // GIVEN a gate of 8 whose statements take 15 ms against a 5 ms budget
    const gate = new DatabaseGate({
      maxConcurrent: 8,
      latencyBudgetMs: 5,
      queueBudgetMs: 10_000,
      intervalMs: 20,
    });
    // A fast statement resolves at once: even on a busy machine (CI) it measures well under
    // the 5 ms budget, where a 1 ms timer could fire 5+ ms late and read as slow.
    const load = (ms: number, n: number) =>
      Promise.all(
        Array.from({ length: n }, () =>
          gate.run('admitted', () => (ms === 0 ? Promise.resolve() : sleep(ms))),
        ),
      );
    await load(15, 64);
    // THEN the limit has dropped
    const lowered = gate.limit;
    expect(lowered).toBeLessThan(8);
    expect(lowered).toBeGreaterThanOrEqual(2);
    // WHEN statements are fast and still queue THEN it climbs back
    // (the limit moves once per 20 ms window: bursts spaced past a window, a bounded number)
    for (let burst = 0; burst < 20 && gate.limit <= lowered; burst++) {
      await load(0, 50);
      await sleep(25);
    }
    expect(gate.limit).toBeGreaterThan(lowered);
  });
});
