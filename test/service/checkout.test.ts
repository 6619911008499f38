import { TestDatabase, createTestDatabase, describeWithPostgres } from './helpers/database';
import {
  ADMIN_TOKEN,
  Harness,
  call,
  checkout,
  checkoutBody,
  newKey,
  setStock,
  startHarness,
} from './helpers/harness';

describeWithPostgres('checkout service', () => {
  let db: TestDatabase;
  let h: Harness;
  let url: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await startHarness(db);
    url = h.service.url;
  });
  afterAll(async () => {
    await h?.stop();
    await db?.drop();
  });
  beforeEach(() => {
    h?.payment.set({ mode: 'ok', errorRate: 0, latencyMs: 0 });
    h?.recommendations.set({ mode: 'ok', errorRate: 0, latencyMs: 0 });
    if (h) {
      h.payment.failAfterChargeRate = 0;
      h.payment.rejectStatus = 0;
    }
  });

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await db.query<{ n: string }>(sql, params))[0].n);
  const stockOf = async (sku: string) =>
    (await db.query<{ available: number }>('SELECT available FROM inventory WHERE sku = $1', [sku]))[0]
      .available;

  describe('POST /v1/checkout', () => {
    test('confirms an order, charges it once, reserves stock and queues an order event', async () => {
      await setStock(url, 'BASIC-1', 5, 1_250);
      const key = newKey();
      const res = await checkout(url, key, checkoutBody({ items: [{ sku: 'BASIC-1', quantity: 2 }] }));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ status: 'CONFIRMED', degraded: [] });
      expect((res.body.recommendations as unknown[]).length).toBeGreaterThan(0);
      const orderId = res.body.orderId as string;
      expect(h.payment.charges.get(orderId)).toMatchObject({ amountCents: 2_500, requests: 1 });
      expect(await stockOf('BASIC-1')).toBe(3);
      const events = await db.query<{ payload: { type: string; orderId: string } }>(
        "SELECT payload FROM outbox WHERE destination = 'order-events' AND payload->>'orderId' = $1",
        [orderId],
      );
      expect(events.map((e) => e.payload.type)).toEqual(['OrderConfirmed']);

      const order = await call(url, 'GET', `/v1/orders/${orderId}`);
      expect(order.status).toBe(200);
      expect(order.body).toMatchObject({
        orderId,
        status: 'CONFIRMED',
        amountCents: 2_500,
        items: [{ sku: 'BASIC-1', quantity: 2, unitPriceCents: 1_250 }],
      });
    });

    test('a retry with the same key and body returns the first answer without a second order', async () => {
      await setStock(url, 'RETRY-1', 5);
      const key = newKey();
      const first = await checkout(url, key, checkoutBody({ items: [{ sku: 'RETRY-1', quantity: 1 }] }));
      const second = await checkout(url, key, checkoutBody({ items: [{ sku: 'RETRY-1', quantity: 1 }] }));
      expect(second.status).toBe(first.status);
      expect(second.body).toEqual(first.body);
      expect(await count('SELECT count(*) AS n FROM orders WHERE idempotency_key = $1', [key])).toBe(1);
      expect(await stockOf('RETRY-1')).toBe(4);
    });

    test('the same key with a different body is 422 and changes nothing', async () => {
      await setStock(url, 'REUSE-1', 5);
      const key = newKey();
      await checkout(url, key, checkoutBody({ items: [{ sku: 'REUSE-1', quantity: 1 }] }));
      const res = await checkout(url, key, checkoutBody({ items: [{ sku: 'REUSE-1', quantity: 2 }] }));
      expect(res.status).toBe(422);
      expect(res.body.error).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(await stockOf('REUSE-1')).toBe(4);
    });

    test('20 concurrent requests with one key make one order and one charge', async () => {
      await setStock(url, 'DUP-1', 100);
      h.payment.set({ latencyMs: 100 });
      const key = newKey();
      const replies = await Promise.all(
        Array.from({ length: 20 }, () =>
          checkout(url, key, checkoutBody({ items: [{ sku: 'DUP-1', quantity: 1 }] })),
        ),
      );
      expect(new Set(replies.map((r) => r.status))).toEqual(new Set([201]));
      const orderIds = new Set(replies.map((r) => r.body.orderId));
      expect(orderIds.size).toBe(1);
      expect(await count('SELECT count(*) AS n FROM orders WHERE idempotency_key = $1', [key])).toBe(1);
      expect(h.payment.charges.get([...orderIds][0] as string)?.requests).toBe(1);
      expect(await stockOf('DUP-1')).toBe(99);
    });

    test('50 concurrent buyers for 10 units: exactly 10 orders, stock 0, the rest 409', async () => {
      await setStock(url, 'RACE-1', 10);
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          checkout(
            url,
            newKey('race'),
            checkoutBody({ customerId: `buyer-${i}`, items: [{ sku: 'RACE-1', quantity: 1 }] }),
          ),
        ),
      );
      const statuses = replies.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(10);
      expect(statuses.filter((s) => s === 409)).toHaveLength(40);
      expect(await stockOf('RACE-1')).toBe(0);
      expect(
        await count(
          "SELECT count(*) AS n FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.sku = 'RACE-1' AND o.status = 'CONFIRMED'",
        ),
      ).toBe(10);
      expect(replies.find((r) => r.status === 409)?.body).toMatchObject({
        error: 'OUT_OF_STOCK',
        sku: 'RACE-1',
      });
    });

    test('carts that overlap in opposite order do not deadlock and never oversell', async () => {
      await setStock(url, 'PAIR-A', 15);
      await setStock(url, 'PAIR-B', 15);
      const replies = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          checkout(
            url,
            newKey('pair'),
            checkoutBody({
              items:
                i % 2
                  ? [
                      { sku: 'PAIR-A', quantity: 1 },
                      { sku: 'PAIR-B', quantity: 1 },
                    ]
                  : [
                      { sku: 'PAIR-B', quantity: 1 },
                      { sku: 'PAIR-A', quantity: 1 },
                    ],
            }),
          ),
        ),
      );
      expect(replies.filter((r) => r.status === 201)).toHaveLength(15);
      expect(replies.filter((r) => r.status === 409)).toHaveLength(15);
      expect(await stockOf('PAIR-A')).toBe(0);
      expect(await stockOf('PAIR-B')).toBe(0);
    });

    test('an unknown SKU is 409 with the SKU named, and the stored answer is replayed', async () => {
      const key = newKey();
      const res = await checkout(url, key, checkoutBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }));
      expect(res.status).toBe(409);
      expect(res.body).toEqual({ error: 'OUT_OF_STOCK', sku: 'NO-SUCH-SKU', reason: 'unknown-sku' });
      const again = await checkout(url, key, checkoutBody({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }));
      expect(again.body).toEqual(res.body);
    });

    test('a declined payment is 402, never retried, and the reservation is released', async () => {
      await setStock(url, 'DECL-1', 3);
      const res = await checkout(
        url,
        newKey(),
        checkoutBody({ items: [{ sku: 'DECL-1', quantity: 2 }], paymentToken: 'tok_decline' }),
      );
      expect(res.status).toBe(402);
      expect(res.body).toMatchObject({ error: 'PAYMENT_DECLINED', reason: 'card_declined' });
      expect(await stockOf('DECL-1')).toBe(3);
      const order = await call(url, 'GET', `/v1/orders/${res.body.orderId as string}`);
      expect(order.body.status).toBe('PAYMENT_DECLINED');
      expect(h.payment.charges.has(res.body.orderId as string)).toBe(false);
    });

    test('a gateway that rejects our request (401) is a 503 for us, not a decline, and a retry after the fix confirms', async () => {
      // GIVEN a gateway that refuses the service's credentials (a misconfiguration)
      await setStock(url, 'REJ-1', 5);
      h.payment.rejectStatus = 401;
      const key = newKey('rejected');
      const body = checkoutBody({ items: [{ sku: 'REJ-1', quantity: 2 }] });
      const rejectedBefore = h.service.metrics.value('PaymentRequestsRejected');
      const declinedBefore = h.service.metrics.value('PaymentsDeclined');

      // WHEN a customer checks out
      const res = await checkout(url, key, body);

      // THEN it is the operator's problem: 503 + Retry-After, no decline, counted for an alarm
      expect(res.status).toBe(503);
      expect(res.body.error).toBe('PAYMENT_GATEWAY_REJECTED');
      expect(res.headers.get('retry-after')).not.toBeNull();
      expect(h.service.metrics.value('PaymentRequestsRejected')).toBe(rejectedBefore + 1);
      expect(h.service.metrics.value('PaymentsDeclined')).toBe(declinedBefore);
      // AND the order waits for payment with its stock held; nothing final is stored under the key
      const order = await db.query<{ status: string }>(
        'SELECT status FROM orders WHERE idempotency_key = $1',
        [key],
      );
      expect(order).toEqual([{ status: 'PAYMENT_IN_PROGRESS' }]);
      expect(await stockOf('REJ-1')).toBe(3);
      expect(
        await count('SELECT count(*) AS n FROM idempotency_keys WHERE key = $1 AND status_code IS NOT NULL', [
          key,
        ]),
      ).toBe(0);

      // WHEN the operator fixes the credentials and the client retries with the same key
      h.payment.rejectStatus = 0;
      const retry = await checkout(url, key, body);

      // THEN the same order is confirmed, charged once
      expect(retry.status).toBe(201);
      expect(retry.body.status).toBe('CONFIRMED');
      expect(h.payment.charges.get(retry.body.orderId as string)).toMatchObject({ amountCents: 2_000 });
      expect(await stockOf('REJ-1')).toBe(3);
    });

    test('a failure in the final transaction releases the key: the retry resumes at once and confirms', async () => {
      // GIVEN the statement that records the outcome fails once for this customer
      await db.query(`
      CREATE SEQUENCE IF NOT EXISTS fail_final_once;
      CREATE OR REPLACE FUNCTION fail_final_once() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.customer_id = 'fail-final' AND NEW.status <> 'PAYMENT_IN_PROGRESS'
           AND nextval('fail_final_once') = 1 THEN
          RAISE EXCEPTION 'injected failure of the final transaction';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_final_once BEFORE UPDATE ON orders
        FOR EACH ROW EXECUTE FUNCTION fail_final_once();
    `);
      try {
        await setStock(url, 'FINAL-1', 5);
        const key = newKey('final');
        const body = checkoutBody({ customerId: 'fail-final', items: [{ sku: 'FINAL-1', quantity: 1 }] });
        const first = await checkout(url, key, body);
        expect(first.status).toBe(503);

        // WHEN the client retries at once
        const started = Date.now();
        const retry = await checkout(url, key, body);

        // THEN it resumes the same order instead of waiting out the lease
        expect(retry.status).toBe(201);
        expect(retry.body.status).toBe('CONFIRMED');
        expect(Date.now() - started).toBeLessThan(2_000);
        expect(await count('SELECT count(*) AS n FROM orders WHERE idempotency_key = $1', [key])).toBe(1);
        expect(h.payment.charges.size).toBeGreaterThan(0);
        expect(await stockOf('FINAL-1')).toBe(4);
      } finally {
        await db.query('DROP TRIGGER fail_final_once ON orders');
      }
    });

    test('duplicate SKU lines are merged, but never past the per-SKU cap of 100', async () => {
      await setStock(url, 'MERGE-1', 10_000);
      // GIVEN two lines of one SKU that together exceed the cap
      const over = await checkout(
        url,
        newKey('merge'),
        checkoutBody({
          items: [
            { sku: 'MERGE-1', quantity: 60 },
            { sku: 'MERGE-1', quantity: 60 },
          ],
        }),
      );
      // THEN 400 naming the SKU, and nothing reserved
      expect(over.status).toBe(400);
      expect(over.body.error).toBe('INVALID_REQUEST');
      expect(String(over.body.message)).toMatch(/MERGE-1.*120.*100/);
      expect(await stockOf('MERGE-1')).toBe(10_000);

      // GIVEN two lines that together stay within it THEN one order line of the sum
      const within = await checkout(
        url,
        newKey('merge'),
        checkoutBody({
          items: [
            { sku: 'MERGE-1', quantity: 40 },
            { sku: 'MERGE-1', quantity: 60 },
          ],
        }),
      );
      expect(within.status).toBe(201);
      const order = await call(url, 'GET', `/v1/orders/${within.body.orderId as string}`);
      expect(order.body.items).toEqual([{ sku: 'MERGE-1', quantity: 100, unitPriceCents: 1_000 }]);
      expect(await stockOf('MERGE-1')).toBe(9_900);
    });

    test('a recommendation outage still checks out, with an empty list marked degraded', async () => {
      await setStock(url, 'RECO-1', 5);
      for (const mode of ['error', 'hang', 'reset'] as const) {
        h.recommendations.set({ mode });
        const started = Date.now();
        const res = await checkout(url, newKey(), checkoutBody({ items: [{ sku: 'RECO-1', quantity: 1 }] }));
        expect(res.status).toBe(201);
        expect(res.body).toMatchObject({
          status: 'CONFIRMED',
          recommendations: [],
          degraded: ['recommendations'],
        });
        expect(Date.now() - started).toBeLessThan(2_000);
      }
    });

    test('gateway 5xx bursts and lost responses are retried with one charge per order', async () => {
      // About half of all attempts fail here (30% before the charge, 30% of the rest after
      // it). With the default breaker (5 consecutive failures) that is an outage, and the
      // breaker rightly defers most orders; this test is about the retry path, so it runs
      // its own service whose breaker will not open within 30 orders.
      const burst = await startHarness(db, { PAYMENT_BREAKER_THRESHOLD: '1000', PAYMENT_RETRIES: '3' });
      try {
        const burstUrl = burst.service.url;
        await setStock(burstUrl, 'BURST-1', 100);
        burst.payment.set({ errorRate: 0.3 });
        burst.payment.failAfterChargeRate = 0.3;
        const replies = await Promise.all(
          Array.from({ length: 30 }, () =>
            checkout(burstUrl, newKey('burst'), checkoutBody({ items: [{ sku: 'BURST-1', quantity: 1 }] })),
          ),
        );
        expect(replies.map((r) => r.status)).toEqual(replies.map(() => 201));
        // P(an order fails all 4 attempts) = 0.51^4 ~ 7%: nearly all orders confirm.
        const confirmed = replies.filter((r) => r.body.status === 'CONFIRMED');
        expect(confirmed.length).toBeGreaterThan(15);
        const retried = [...burst.payment.charges.values()].filter((c) => c.requests > 1);
        expect(retried.length).toBeGreaterThan(0); // the lost responses were retried...
        for (const reply of confirmed) {
          // ...and every confirmed order maps to exactly one charge of its own amount
          expect(burst.payment.charges.get(reply.body.orderId as string)).toMatchObject({
            amountCents: 1_000,
          });
        }
        const chargeIds = [...burst.payment.charges.values()].map((c) => c.chargeId);
        expect(new Set(chargeIds).size).toBe(chargeIds.length);
      } finally {
        await burst.stop();
      }
    });
  });

  describe('bad input', () => {
    // headers: null sends no Idempotency-Key at all; otherwise they override a valid one
    const bad: [string, Record<string, string> | null, unknown, number, RegExp][] = [
      ['no Idempotency-Key', null, checkoutBody(), 400, /idempotency-key/],
      [
        'an Idempotency-Key over 255 characters',
        { 'idempotency-key': 'k'.repeat(256) },
        checkoutBody(),
        400,
        /idempotency-key/,
      ],
      ['an unknown field', {}, { ...checkoutBody(), coupon: 'FREE' }, 400, /additional properties/],
      [
        'a negative quantity',
        {},
        checkoutBody({ items: [{ sku: 'SKU-1', quantity: -1 }] }),
        400,
        /items\/0\/quantity/,
      ],
      [
        'a huge quantity',
        {},
        checkoutBody({ items: [{ sku: 'SKU-1', quantity: 1e9 }] }),
        400,
        /items\/0\/quantity/,
      ],
      [
        'a fractional quantity',
        {},
        checkoutBody({ items: [{ sku: 'SKU-1', quantity: 1.5 }] }),
        400,
        /items\/0\/quantity/,
      ],
      [
        'a bad SKU',
        {},
        checkoutBody({ items: [{ sku: "x'; DROP TABLE orders", quantity: 1 }] }),
        400,
        /items\/0\/sku/,
      ],
      ['no items', {}, checkoutBody({ items: [] }), 400, /items/],
      [
        'a missing paymentToken',
        {},
        { customerId: 'c', items: [{ sku: 'SKU-1', quantity: 1 }] },
        400,
        /paymentToken/,
      ],
      [
        'a string quantity',
        {},
        checkoutBody({ items: [{ sku: 'SKU-1', quantity: '1' }] }),
        400,
        /items\/0\/quantity/,
      ],
    ];

    test.each(bad)(
      '%s is a 400 naming the field, and nothing is written',
      async (_name, headers, body, status, message) => {
        const before = await count('SELECT count(*) AS n FROM idempotency_keys');
        const res = await call(url, 'POST', '/v1/checkout', {
          body,
          headers: headers === null ? {} : { 'idempotency-key': newKey(), ...headers },
        });
        expect(res.status).toBe(status);
        expect(res.body.error).toBe('INVALID_REQUEST');
        expect(String(res.body.message)).toMatch(message);
        expect(await count('SELECT count(*) AS n FROM idempotency_keys')).toBe(before);
      },
    );

    test('malformed JSON is a 400', async () => {
      const res = await call(url, 'POST', '/v1/checkout', {
        rawBody: '{"customerId": ',
        headers: { 'idempotency-key': newKey() },
      });
      expect(res.status).toBe(400);
    });

    test('an oversized body is a 413 and nothing is written', async () => {
      const before = await count('SELECT count(*) AS n FROM idempotency_keys');
      const res = await call(url, 'POST', '/v1/checkout', {
        rawBody: JSON.stringify({ ...checkoutBody(), padding: 'x'.repeat(100_000) }),
        headers: { 'idempotency-key': newKey() },
      });
      expect(res.status).toBe(413);
      expect(await count('SELECT count(*) AS n FROM idempotency_keys')).toBe(before);
    });

    test('GET /v1/orders with a malformed id is 400, an unknown one 404', async () => {
      expect((await call(url, 'GET', '/v1/orders/not-a-uuid')).status).toBe(400);
      expect((await call(url, 'GET', '/v1/orders/00000000-0000-0000-0000-000000000000')).status).toBe(404);
    });
  });

  describe('admin', () => {
    test('setting stock needs the bearer token', async () => {
      const body = { available: 1, priceCents: 1 };
      expect((await call(url, 'PUT', '/admin/inventory/ADM-1', { body })).status).toBe(401);
      expect(
        (
          await call(url, 'PUT', '/admin/inventory/ADM-1', {
            body,
            headers: { authorization: 'Bearer wrong' },
          })
        ).status,
      ).toBe(401);
      expect(
        (
          await call(url, 'PUT', '/admin/inventory/ADM-1', {
            body,
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          })
        ).status,
      ).toBe(200);
    });

    test('rejects negative stock with the field named', async () => {
      const res = await call(url, 'PUT', '/admin/inventory/ADM-2', {
        body: { available: -1, priceCents: 1 },
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(res.status).toBe(400);
      expect(String(res.body.message)).toMatch(/available/);
    });
  });

  describe('health', () => {
    test('live, startup and ready answer 200 on a healthy instance', async () => {
      for (const path of ['/health/live', '/health/startup', '/health/ready']) {
        expect((await call(url, 'GET', path)).status).toBe(200);
      }
    });
  });
});
