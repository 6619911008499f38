import {
  TestDatabase,
  countDatabaseErrors,
  createTestDatabase,
  describeWithPostgres,
} from './helpers/database';
import { Harness, call, checkout, checkoutBody, newKey, setStock, startHarness } from './helpers/harness';
import { TcpProxy } from './helpers/tcp-proxy';
import { waitFor } from './helpers/wait-for';

describeWithPostgres('resilience', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** Lets a timer in the service (a breaker's half-open delay) run out; nothing to poll meanwhile. */
  const elapse = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const started = performance.now();
    const result = await fn();
    return [result, performance.now() - started];
  };

  /** Runs a test against its own harness (own config), always stopping it. */
  function withHarness(
    name: string,
    overrides: Record<string, string>,
    fn: (h: Harness) => Promise<void>,
    timeoutMs?: number,
  ) {
    test(
      name,
      async () => {
        const h = await startHarness(db, overrides);
        try {
          await fn(h);
        } finally {
          await h.stop();
        }
      },
      timeoutMs,
    );
  }

  describe('payment gateway hangs', () => {
    withHarness(
      'callers get an answer within the timeout, then fail fast while open, then recover through half-open',
      {
        PAYMENT_ATTEMPT_TIMEOUT_MS: '200',
        PAYMENT_RETRIES: '2',
        PAYMENT_BREAKER_THRESHOLD: '5',
        PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: '1000',
      },
      async (h) => {
        const url = h.service.url;
        await setStock(url, 'HANG-1', 100);
        const body = checkoutBody({ items: [{ sku: 'HANG-1', quantity: 1 }] });
        h.payment.set({ mode: 'hang' });

        // GIVEN a hanging gateway: each caller is answered within 3 attempts x 200 ms + backoff
        const [first, firstMs] = await timed(() => checkout(url, newKey('hang'), body));
        expect(first.status).toBe(201);
        expect(first.body.status).toBe('PENDING_PAYMENT');
        expect(firstMs).toBeLessThan(1_500);
        await checkout(url, newKey('hang'), body); // 6 consecutive failures >= threshold 5
        expect(h.service.payments.breakerState).toBe('open');

        // WHEN the breaker is open THEN callers fail fast, deferred, without touching the gateway
        const chargesBefore = h.payment.charges.size;
        const requestsBefore = h.payment.requestCount;
        for (let i = 0; i < 5; i++) {
          const [res, ms] = await timed(() => checkout(url, newKey('open'), body));
          expect({ status: res.status, body: res.body }).toMatchObject({
            status: 201,
            body: { status: 'PENDING_PAYMENT' },
          });
          // Fast means it never waited on the gateway: a caller that did would take at
          // least 3 attempts x 200 ms. The latency itself is the bench's to measure.
          expect(ms).toBeLessThan(600);
        }
        expect(h.payment.requestCount).toBe(requestsBefore);
        expect(h.payment.charges.size).toBe(chargesBefore);
        expect(h.service.metrics.value('PaymentDeferredCircuitOpen')).toBeGreaterThanOrEqual(5);

        // AND the deferred orders wait in the outbox for the payment-retry queue, token included
        const deferred = await db.query<{ payload: { cause: string; paymentToken: string } }>(
          "SELECT payload FROM outbox WHERE destination = 'payment-retry'",
        );
        expect(deferred.filter((d) => d.payload.cause === 'circuit-open').length).toBeGreaterThanOrEqual(5);
        expect(deferred.every((d) => d.payload.paymentToken === 'tok_visa')).toBe(true);

        // WHEN the gateway heals THEN, once half-open elapses, a trial call confirms and closes the breaker
        h.payment.set({ mode: 'ok' });
        await waitFor(async () => (await checkout(url, newKey('healed'), body)).body.status === 'CONFIRMED', {
          timeoutMs: 5_000,
          intervalMs: 100,
          message: 'no checkout confirmed after the gateway healed',
        });
        expect(h.service.payments.breakerState).toBe('closed');
      },
    );

    withHarness(
      'callers arriving during the half-open trial are deferred at once, not held behind the trial',
      {
        PAYMENT_ATTEMPT_TIMEOUT_MS: '2000',
        PAYMENT_RETRIES: '0',
        PAYMENT_BREAKER_THRESHOLD: '1',
        PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: '300',
      },
      async (h) => {
        const url = h.service.url;
        await setStock(url, 'TRIAL-1', 100);
        const body = checkoutBody({ items: [{ sku: 'TRIAL-1', quantity: 1 }] });
        h.payment.set({ mode: 'error' });
        await checkout(url, newKey(), body);
        expect(h.service.payments.breakerState).toBe('open');
        h.payment.set({ mode: 'hang' });
        // cockatiel turns half-open only on the first call after the delay: no call may come before it
        await elapse(400);

        // GIVEN the half-open trial call is hanging on the gateway (for its 2 s timeout)
        const trial = checkout(url, newKey('trial'), body);
        await waitFor(() => h.service.payments.breakerState === 'half-open', {
          message: 'the breaker never went half-open',
        });

        // WHEN another buyer checks out during the trial
        const [during, duringMs] = await timed(() => checkout(url, newKey('during'), body));

        // THEN it is deferred without waiting for the trial's outcome (cockatiel alone
        // holds it until the trial's attempt times out, ~2 s, then re-runs it)
        expect(during.status).toBe(201);
        expect(during.body.status).toBe('PENDING_PAYMENT');
        expect(duringMs).toBeLessThan(1_000);
        // AND the trial still decides the breaker: it times out and reopens it
        expect((await trial).body.status).toBe('PENDING_PAYMENT');
        expect(h.service.payments.breakerState).toBe('open');
      },
    );

    withHarness(
      'a failed half-open trial reopens the breaker',
      {
        PAYMENT_ATTEMPT_TIMEOUT_MS: '100',
        PAYMENT_RETRIES: '0',
        PAYMENT_BREAKER_THRESHOLD: '2',
        PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: '500',
      },
      async (h) => {
        const url = h.service.url;
        await setStock(url, 'HALF-1', 100);
        const body = checkoutBody({ items: [{ sku: 'HALF-1', quantity: 1 }] });
        h.payment.set({ mode: 'error' });
        await checkout(url, newKey(), body);
        await checkout(url, newKey(), body);
        expect(h.service.payments.breakerState).toBe('open');
        await elapse(600); // the half-open delay, so that the next call is the trial
        const trial = await checkout(url, newKey(), body);
        expect(trial.body.status).toBe('PENDING_PAYMENT');
        expect(h.service.payments.breakerState).toBe('open');
      },
    );
  });

  describe('payment gateway rejects our requests (misconfiguration)', () => {
    withHarness(
      'rejections open the breaker: later orders are deferred without calling the gateway',
      { PAYMENT_BREAKER_THRESHOLD: '3', PAYMENT_RETRIES: '2' },
      async (h) => {
        const url = h.service.url;
        await setStock(url, 'REJB-1', 100);
        const body = checkoutBody({ items: [{ sku: 'REJB-1', quantity: 1 }] });
        h.payment.rejectStatus = 403;

        // GIVEN every call is refused: each checkout is answered 503 after ONE attempt (not retried)
        for (let i = 0; i < 3; i++) {
          const res = await checkout(url, newKey('rejb'), body);
          expect(res.status).toBe(503);
          expect(res.body.error).toBe('PAYMENT_GATEWAY_REJECTED');
          expect(h.payment.rejectedRequests).toBe(i + 1);
        }

        // THEN the breaker is open, and the next order is deferred, not sent
        expect(h.service.payments.breakerState).toBe('open');
        const deferred = await checkout(url, newKey('rejb'), body);
        expect(deferred.status).toBe(201);
        expect(deferred.body.status).toBe('PENDING_PAYMENT');
        expect(h.payment.rejectedRequests).toBe(3);
      },
    );
  });

  describe('bulkheads and load shedding', () => {
    withHarness(
      'the payment bulkhead defers what it cannot hold instead of queueing without bound',
      { PAYMENT_MAX_CONCURRENT: '2', PAYMENT_MAX_QUEUED: '0', PAYMENT_ATTEMPT_TIMEOUT_MS: '2000' },
      async (h) => {
        const url = h.service.url;
        await setStock(url, 'BULK-1', 100);
        h.payment.set({ latencyMs: 300 });
        const replies = await Promise.all(
          Array.from({ length: 8 }, () =>
            checkout(url, newKey('bulk'), checkoutBody({ items: [{ sku: 'BULK-1', quantity: 1 }] })),
          ),
        );
        expect(replies.every((r) => r.status === 201)).toBe(true);
        expect(replies.filter((r) => r.body.status === 'CONFIRMED').length).toBeGreaterThanOrEqual(2);
        expect(replies.filter((r) => r.body.status === 'PENDING_PAYMENT').length).toBeGreaterThan(0);
        expect(h.service.metrics.value('PaymentDeferredBulkheadFull')).toBeGreaterThan(0);
        expect(h.service.payments.breakerState).toBe('closed'); // rejections are not gateway failures
      },
    );

    withHarness(
      'over the in-flight limit new checkouts get 503 + Retry-After and write nothing; health is not shed',
      {
        MAX_IN_FLIGHT: '4',
        MAX_EVENT_LOOP_DELAY_MS: '200',
        RETRY_AFTER_SECONDS: '3',
        PAYMENT_ATTEMPT_TIMEOUT_MS: '2000',
      },
      async (h) => {
        const url = h.service.url;
        await setStock(url, 'SHED-1', 1_000);
        h.payment.set({ latencyMs: 400 });
        const keys = Array.from({ length: 20 }, () => newKey('shed'));
        const load = Promise.all(
          keys.map((k) => checkout(url, k, checkoutBody({ items: [{ sku: 'SHED-1', quantity: 1 }] }))),
        );
        // While the admitted checkouts wait on the gateway, readiness still answers
        await waitFor(() => h.payment.charges.size > 0 || h.service.metrics.value('RequestsShed') > 0);
        expect((await call(url, 'GET', '/health/ready')).status).toBe(200);
        const replies = await load;
        const shed = replies.filter((r) => r.status === 503);
        expect(shed.length).toBeGreaterThan(0);
        expect(replies.filter((r) => r.status === 201).length).toBeGreaterThanOrEqual(4);
        for (const r of shed) {
          expect(r.headers.get('retry-after')).toBe('3');
          expect(r.body.error).toBe('OVERLOADED');
        }
        const shedKeys = keys.filter((_, i) => replies[i].status === 503);
        const written = await db.query('SELECT key FROM idempotency_keys WHERE key = ANY($1)', [shedKeys]);
        expect(written).toEqual([]);
      },
    );
  });

  describe('compensation under concurrency', () => {
    withHarness(
      '400 concurrent multi-SKU carts, half declined: no deadlock, no 503, nothing left in progress, stock exact',
      {
        // Room for all 400 at once: this test is about locks, not about shedding, bulkheads,
        // gateway timeouts or the breaker. On a busy 2-core CI box 400 concurrent carts can
        // hold the event loop long enough for a 2 s payment attempt to time out, and a
        // deferred (201 PENDING_PAYMENT) decline is not the answer this test checks.
        PAYMENT_MAX_CONCURRENT: '1000',
        PAYMENT_MAX_QUEUED: '1000',
        PAYMENT_ATTEMPT_TIMEOUT_MS: '20000',
        PAYMENT_RETRIES: '0',
        PAYMENT_BREAKER_THRESHOLD: '1000000',
        MAX_IN_FLIGHT: '1000',
        MAX_DB_QUEUE_MS: '60000',
        MAX_EVENT_LOOP_DELAY_MS: '10000',
        DB_CONNECT_TIMEOUT_MS: '20000',
        DB_STATEMENT_TIMEOUT_MS: '20000',
        IDEMPOTENCY_LEASE_MS: '60000', // >= statement timeout + one payment attempt
      },
      async (h) => {
        const url = h.service.url;
        const skus = Array.from({ length: 8 }, (_, i) => `MIX-${i}`);
        for (const sku of skus) await setStock(url, sku, 100_000);
        h.payment.set({ latencyMs: 5 });
        // GIVEN 400 carts of 2-4 distinct SKUs in random order (a fixed seed), every other one declined
        let seed = 20_240_901;
        const random = (n: number) => {
          seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
          return seed % n;
        };
        const carts = Array.from({ length: 400 }, (_, i) => {
          const shuffled = [...skus].sort(() => random(3) - 1);
          return {
            key: newKey('mix'),
            declined: i % 2 === 1,
            items: shuffled.slice(0, 2 + random(3)).map((sku) => ({ sku, quantity: 1 + random(3) })),
          };
        });
        const lockErrors = countDatabaseErrors(['40P01', '40001']);
        let replies: Awaited<ReturnType<typeof checkout>>[];
        try {
          // WHEN they all check out at once
          replies = await Promise.all(
            carts.map((c, i) =>
              checkout(
                url,
                c.key,
                checkoutBody({
                  customerId: `mix-${i}`,
                  items: c.items,
                  paymentToken: c.declined ? 'tok_decline' : 'tok_visa',
                }),
              ),
            ),
          );
        } finally {
          lockErrors.restore();
        }

        // THEN PostgreSQL reported no deadlock, and every cart got its real answer
        expect(lockErrors.count()).toBe(0);
        expect(replies.map((r, i) => `${i}:${r.status}`)).toEqual(
          carts.map((c, i) => `${i}:${c.declined ? 402 : 201}`),
        );
        // AND no order is left PAYMENT_IN_PROGRESS for the sweeper to send to payment-retry
        const statuses = await db.query<{ status: string; n: string }>(
          `SELECT status, count(*) AS n FROM orders WHERE customer_id LIKE 'mix-%' GROUP BY status ORDER BY status`,
        );
        expect(statuses.map((s) => [s.status, Number(s.n)])).toEqual([
          ['CONFIRMED', 200],
          ['PAYMENT_DECLINED', 200],
        ]);
        // AND the stock is exactly what the confirmed carts took
        for (const sku of skus) {
          const taken = carts
            .filter((c) => !c.declined)
            .flatMap((c) => c.items)
            .filter((i) => i.sku === sku)
            .reduce((sum, i) => sum + i.quantity, 0);
          const [row] = await db.query<{ available: number }>(
            'SELECT available FROM inventory WHERE sku = $1',
            [sku],
          );
          expect({ sku, available: row.available }).toEqual({ sku, available: 100_000 - taken });
        }
      },
      60_000,
    );
  });

  describe('database restart mid-load', () => {
    test('readiness goes red then green, and no accepted order is lost', async () => {
      const target = new URL(db.url);
      const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
      await proxy.start();
      const viaProxy = new URL(db.url);
      viaProxy.host = `127.0.0.1:${proxy.port}`;
      const h = await startHarness({ ...db, url: viaProxy.toString() }, { DB_CONNECT_TIMEOUT_MS: '300' });
      try {
        const url = h.service.url;
        await setStock(url, 'DBR-1', 10_000);
        const accepted: string[] = [];
        const failed: number[] = [];
        let running = true;
        const worker = async () => {
          while (running) {
            const res = await checkout(
              url,
              newKey('dbr'),
              checkoutBody({ items: [{ sku: 'DBR-1', quantity: 1 }] }),
            ).catch(() => undefined);
            if (res?.status === 201) accepted.push(res.body.orderId as string);
            else failed.push(res?.status ?? 0);
          }
        };
        const workers = Promise.all(Array.from({ length: 5 }, worker));
        await waitFor(() => accepted.length >= 5, { message: 'no checkout accepted before the cut' });

        await proxy.cut();
        await waitFor(async () => (await call(url, 'GET', '/health/ready')).status === 503, {
          message: 'readiness stayed green with the database cut',
        });
        expect((await call(url, 'GET', '/health/live')).status).toBe(200);
        await waitFor(() => failed.some((s) => s === 503), { message: 'no checkout saw the outage' });
        await proxy.restore();

        await waitFor(async () => (await call(url, 'GET', '/health/ready')).status === 200, {
          intervalMs: 100,
          message: 'readiness never recovered',
        });
        const acceptedAtRestore = accepted.length;
        await waitFor(() => accepted.length >= acceptedAtRestore + 5, {
          message: 'no checkout accepted after the restore',
        });
        running = false;
        await workers;

        expect(failed.filter((s) => s === 503).length).toBeGreaterThan(0); // the outage was visible...
        const persisted = await db.query<{ id: string; status: string }>(
          'SELECT id, status FROM orders WHERE id = ANY($1)',
          [accepted],
        );
        expect(persisted.length).toBe(accepted.length); // ...and every accepted order survived it
        expect(persisted.every((o) => o.status === 'CONFIRMED' || o.status === 'PENDING_PAYMENT')).toBe(true);
        expect(new Set(accepted).size).toBe(accepted.length);
      } finally {
        await h.stop();
        await proxy.stop();
      }
    });
  });
});
