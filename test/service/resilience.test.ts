import { TestDatabase, createTestDatabase, postgresAvailable } from './helpers/database';
import { Harness, call, checkout, checkoutBody, newKey, setStock, startHarness } from './helpers/harness';
import { TcpProxy } from './helpers/tcp-proxy';

let available = false;
let db: TestDatabase;
beforeAll(async () => {
  available = await postgresAvailable();
  if (available) db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const result = await fn();
  return [result, performance.now() - started];
};

/** Runs a test against its own harness (own config), always stopping it. */
function withHarness(name: string, overrides: Record<string, string>, fn: (h: Harness) => Promise<void>) {
  test(name, async () => {
    if (!available) return;
    const h = await startHarness(db, overrides);
    try {
      await fn(h);
    } finally {
      await h.stop();
    }
  });
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
      for (let i = 0; i < 5; i++) {
        const [res, ms] = await timed(() => checkout(url, newKey('open'), body));
        expect({ status: res.status, body: res.body }).toMatchObject({
          status: 201,
          body: { status: 'PENDING_PAYMENT' },
        });
        expect(ms).toBeLessThan(150);
      }
      expect(h.payment.charges.size).toBe(chargesBefore);
      expect(h.service.metrics.value('PaymentDeferredCircuitOpen')).toBeGreaterThanOrEqual(5);

      // AND the deferred orders wait in the outbox for the payment-retry queue, token included
      const deferred = await db.query<{ payload: { cause: string; paymentToken: string } }>(
        "SELECT payload FROM outbox WHERE destination = 'payment-retry'",
      );
      expect(deferred.filter((d) => d.payload.cause === 'circuit-open').length).toBeGreaterThanOrEqual(5);
      expect(deferred.every((d) => d.payload.paymentToken === 'tok_visa')).toBe(true);

      // WHEN the gateway heals and half-open elapses THEN the trial call closes the breaker
      h.payment.set({ mode: 'ok' });
      await sleep(1_100);
      const healed = await checkout(url, newKey('healed'), body);
      expect(healed.body.status).toBe('CONFIRMED');
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
      await sleep(400);

      // GIVEN the half-open trial call is hanging on the gateway (for its 2 s timeout)
      const trial = checkout(url, newKey('trial'), body);
      for (let i = 0; i < 100 && h.service.payments.breakerState !== 'half-open'; i++) await sleep(10);
      expect(h.service.payments.breakerState).toBe('half-open');

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
      await sleep(600);
      const trial = await checkout(url, newKey(), body);
      expect(trial.body.status).toBe('PENDING_PAYMENT');
      expect(h.service.payments.breakerState).toBe('open');
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
    { MAX_IN_FLIGHT: '4', RETRY_AFTER_SECONDS: '3', PAYMENT_ATTEMPT_TIMEOUT_MS: '2000' },
    async (h) => {
      const url = h.service.url;
      await setStock(url, 'SHED-1', 1_000);
      h.payment.set({ latencyMs: 400 });
      const keys = Array.from({ length: 20 }, () => newKey('shed'));
      const load = Promise.all(
        keys.map((k) => checkout(url, k, checkoutBody({ items: [{ sku: 'SHED-1', quantity: 1 }] }))),
      );
      await sleep(100);
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

describe('database restart mid-load', () => {
  test('readiness goes red then green, and no accepted order is lost', async () => {
    if (!available) return;
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
      await sleep(400);

      await proxy.cut();
      await sleep(300);
      expect((await call(url, 'GET', '/health/ready')).status).toBe(503);
      expect((await call(url, 'GET', '/health/live')).status).toBe(200);
      await sleep(500);
      await proxy.restore();

      let ready = 0;
      for (let i = 0; i < 50 && ready !== 200; i++) {
        ready = (await call(url, 'GET', '/health/ready')).status;
        if (ready !== 200) await sleep(100);
      }
      expect(ready).toBe(200);
      await sleep(400);
      running = false;
      await workers;

      expect(failed.filter((s) => s === 503).length).toBeGreaterThan(0); // the outage was visible...
      expect(accepted.length).toBeGreaterThan(0);
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
