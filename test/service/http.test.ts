import { Agent, request } from 'node:http';
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
import { RawConnection, httpCall } from './helpers/raw-http';
import { waitFor } from './helpers/wait-for';

/** Load shedding on the in-flight signal only: the others stay out of the way on a busy machine. */
const SHED_ON_IN_FLIGHT = (limit: number) => ({
  MAX_IN_FLIGHT: String(limit),
  MAX_EVENT_LOOP_DELAY_MS: '10000',
  MAX_DB_WAITING: '100000',
  MAX_DB_LATENCY_MS: '60000',
  MAX_DB_QUEUE_MS: '60000',
});

const portOf = (h: Harness) => Number(new URL(h.service.url).port);

const checkoutHead = (key: string, contentLength: number) =>
  'POST /v1/checkout HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
  `Idempotency-Key: ${key}\r\nContent-Length: ${contentLength}\r\n\r\n`;

describeWithPostgres('the HTTP layer', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  describe('slow clients', () => {
    test('clients trickling headers or a body do not take work slots, and are cut off at the request timeout', async () => {
      // GIVEN room for 8 requests of work, and 24 clients far too slow to finish a request
      const h = await startHarness(db, {
        ...SHED_ON_IN_FLIGHT(8),
        HTTP_HEADERS_TIMEOUT_MS: '1000',
        HTTP_REQUEST_TIMEOUT_MS: '1500',
      });
      const slow: RawConnection[] = [];
      try {
        await setStock(h.service.url, 'SLOW-1', 1_000);
        for (let i = 0; i < 12; i++) {
          const body = await new RawConnection(portOf(h)).connected();
          body.write(checkoutHead(`slow-body-${i}`, 200));
          body.trickle('{"customerId":"c"', 200);
          const head = await new RawConnection(portOf(h)).connected();
          head.write('POST /v1/checkout HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
          head.trickle('abcdef', 200);
          slow.push(body, head);
        }
        await new Promise((resolve) => setTimeout(resolve, 300));

        // WHEN normal clients check out while the slow ones are still sending
        const results = await Promise.all(
          Array.from({ length: 6 }, () =>
            checkout(
              h.service.url,
              newKey('fast'),
              checkoutBody({ items: [{ sku: 'SLOW-1', quantity: 1 }] }),
            ),
          ),
        );

        // THEN every checkout succeeds, and each slow client is answered 408 or closed soon
        // after the request timeout (node checks its timeouts once a second here)
        expect(results.map((r) => r.status)).toEqual(Array(6).fill(201));
        const outcomes = await Promise.all(slow.map((c) => c.closed(8_000)));
        for (const outcome of outcomes) {
          expect(outcome.closedByServer).toBe(true);
          expect(outcome.closedAfterMs).toBeLessThan(5_000);
          if (outcome.status !== undefined) expect(outcome.status).toBe(408);
        }
      } finally {
        slow.forEach((c) => c.destroy());
        await h.stop();
      }
    });

    test('a client that disconnects keeps its work slot until its checkout has finished', async () => {
      // GIVEN room for one request of work and a gateway that takes 800 ms to charge
      const h = await startHarness(db, {
        ...SHED_ON_IN_FLIGHT(1),
        PAYMENT_ATTEMPT_TIMEOUT_MS: '3000',
        PAYMENT_RETRIES: '0',
      });
      try {
        await setStock(h.service.url, 'GONE-1', 10);
        h.payment.set({ latencyMs: 800 });
        const body = JSON.stringify(checkoutBody({ items: [{ sku: 'GONE-1', quantity: 1 }] }));
        const key = newKey('gone');
        const leaving = await new RawConnection(portOf(h)).connected();
        leaving.write(checkoutHead(key, Buffer.byteLength(body)) + body);
        await waitFor(
          async () => (await db.query('SELECT 1 FROM orders WHERE idempotency_key = $1', [key])).length,
        );

        // WHEN its client goes away while the payment is still running
        leaving.destroy();
        await new Promise((resolve) => setTimeout(resolve, 100));

        // THEN the next request is shed, since that checkout is still working
        const shed = await checkout(
          h.service.url,
          newKey('next'),
          checkoutBody({ items: [{ sku: 'GONE-1', quantity: 1 }] }),
        );
        expect(shed.status).toBe(503);
        expect(shed.body.error).toBe('OVERLOADED');
        // ...and once it has finished (recorded, though nobody reads the answer), the slot is free
        await waitFor(
          async () =>
            (
              await db.query("SELECT 1 FROM orders WHERE idempotency_key = $1 AND status = 'CONFIRMED'", [
                key,
              ])
            ).length,
          { timeoutMs: 5_000, message: 'the abandoned checkout was never recorded' },
        );
        h.payment.set({ latencyMs: 0 });
        const after = await checkout(
          h.service.url,
          newKey('after'),
          checkoutBody({ items: [{ sku: 'GONE-1', quantity: 1 }] }),
        );
        expect(after.status).toBe(201);
      } finally {
        await h.stop();
      }
    });
  });

  describe('load shedding', () => {
    test('a shed request gets 503 + Retry-After at once, before its body is read, and its kept-alive connection serves the next request', async () => {
      // GIVEN room for one request of work, taken by a checkout whose payment takes 800 ms
      const h = await startHarness(db, {
        ...SHED_ON_IN_FLIGHT(1),
        PAYMENT_ATTEMPT_TIMEOUT_MS: '3000',
        PAYMENT_RETRIES: '0',
      });
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        await setStock(h.service.url, 'SHED-1', 10);
        h.payment.set({ latencyMs: 800 });
        const working = checkout(
          h.service.url,
          newKey('working'),
          checkoutBody({ items: [{ sku: 'SHED-1', quantity: 1 }] }),
        );
        await waitFor(
          async () =>
            (
              await db.query(
                "SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id WHERE i.sku = 'SHED-1'",
              )
            ).length,
        );
        const send = (path: string, body?: string) =>
          new Promise<{ status: number; headers: Record<string, unknown>; body: string; reused: boolean }>(
            (resolve, reject) => {
              const req = request(
                `${h.service.url}${path}`,
                {
                  agent,
                  method: body === undefined ? 'GET' : 'POST',
                  headers:
                    body === undefined
                      ? {}
                      : { 'content-type': 'application/json', 'idempotency-key': newKey('shed') },
                },
                (res) => {
                  let text = '';
                  res.setEncoding('utf8');
                  res.on('data', (chunk) => (text += chunk));
                  res.on('end', () =>
                    resolve({
                      status: res.statusCode!,
                      headers: res.headers,
                      body: text,
                      reused: req.reusedSocket,
                    }),
                  );
                },
              );
              req.on('error', reject);
              req.end(body);
            },
          );

        // WHEN a checkout arrives while the only slot is taken
        const shed = await send(
          '/v1/checkout',
          JSON.stringify(checkoutBody({ items: [{ sku: 'SHED-1', quantity: 1 }] })),
        );

        // THEN it is refused with the service's 503, in JSON, with Retry-After, and nothing written
        expect(shed.status).toBe(503);
        expect(shed.headers['retry-after']).toBe('2');
        expect(shed.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(JSON.parse(shed.body)).toEqual({
          error: 'OVERLOADED',
          message: 'the service is shedding load; retry after the given delay',
        });
        // ...health is never shed, on the same connection (its unread body was dropped)
        const live = await send('/health/live');
        expect(live).toMatchObject({ status: 200, reused: true });
        // ...and once the slot is free again, the same connection takes a checkout
        expect((await working).status).toBe(201);
        const next = await send(
          '/v1/checkout',
          JSON.stringify(checkoutBody({ items: [{ sku: 'SHED-1', quantity: 1 }] })),
        );
        expect(next).toMatchObject({ status: 201, reused: true });
        expect((await db.query("SELECT count(*)::int AS n FROM order_items WHERE sku = 'SHED-1'"))[0].n).toBe(
          2,
        );
      } finally {
        agent.destroy();
        await h.stop();
      }
    });
  });

  describe('shutdown and client connections', () => {
    test('connections with nothing in flight do not hold shutdown: it completes in well under a second', async () => {
      // GIVEN a drain timeout of 5 s and three connections with no request in flight: one that
      // sent nothing yet, one part-way through its headers, one kept alive after an answer
      const h = await startHarness(db, { DRAIN_TIMEOUT_MS: '5000' });
      const silent = await new RawConnection(portOf(h)).connected();
      const partial = await new RawConnection(portOf(h)).connected();
      partial.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      const agent = new Agent({ keepAlive: true });
      try {
        const first = await httpCall(`${h.service.url}/health/live`, { agent });
        expect(first.headers.connection).toBe('keep-alive');

        // WHEN the service shuts down
        const started = Date.now();
        await h.service.shutdown('test');

        // THEN it is done long before the drain timeout, and those connections are closed
        expect(Date.now() - started).toBeLessThan(1_000);
        expect((await silent.closed(1_000)).closedByServer).toBe(true);
        expect((await partial.closed(1_000)).closedByServer).toBe(true);
      } finally {
        agent.destroy();
        silent.destroy();
        partial.destroy();
        await h.stop();
      }
    });

    test('a request in flight at shutdown is answered, with Connection: close, and shutdown waits for it only', async () => {
      // GIVEN a checkout in progress on a kept-alive connection, its gateway taking 600 ms
      const h = await startHarness(db, { DRAIN_TIMEOUT_MS: '5000' });
      const agent = new Agent({ keepAlive: true });
      try {
        await setStock(h.service.url, 'DRAIN-1', 10);
        h.payment.set({ latencyMs: 600 });
        const answer = httpCall(`${h.service.url}/v1/checkout`, {
          method: 'POST',
          agent,
          headers: { 'idempotency-key': newKey('drain') },
          body: checkoutBody({ items: [{ sku: 'DRAIN-1', quantity: 1 }] }),
        });
        await new Promise((resolve) => setTimeout(resolve, 200));

        // WHEN the service shuts down
        const started = Date.now();
        const stopped = h.service.shutdown('test');

        // THEN the request is answered and told to close its connection, and shutdown ends
        // right after it (not at the drain timeout)
        const res = await answer;
        expect(res.status).toBe(201);
        expect(res.headers.connection).toBe('close');
        await stopped;
        expect(Date.now() - started).toBeLessThan(1_500);
      } finally {
        agent.destroy();
        await h.stop();
      }
    });
  });

  describe('HTTP contract', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(db);
      await setStock(h.service.url, 'HTTP-1', 1_000);
    });
    afterAll(async () => {
      await h?.stop();
    });

    test('an order id is accepted in any case and answered in lower case', async () => {
      const created = await checkout(
        h.service.url,
        newKey(),
        checkoutBody({ items: [{ sku: 'HTTP-1', quantity: 1 }] }),
      );
      const orderId = created.body.orderId as string;

      const res = await call(h.service.url, 'GET', `/v1/orders/${orderId.toUpperCase()}`);

      expect(res.status).toBe(200);
      expect(res.body.orderId).toBe(orderId);
      expect((await call(h.service.url, 'GET', '/v1/orders/not-a-uuid')).status).toBe(400);
    });

    test('a body that is not JSON is 415, and JSON with a charset is accepted', async () => {
      const body = JSON.stringify(checkoutBody({ items: [{ sku: 'HTTP-1', quantity: 1 }] }));
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
        const res = await call(h.service.url, 'POST', '/v1/checkout', {
          rawBody: body,
          headers: { 'content-type': contentType, 'idempotency-key': newKey() },
        });
        expect({ contentType, status: res.status }).toEqual({ contentType, status: 415 });
        expect(res.body.message).toMatch(/application\/json/);
      }
      const json = await call(h.service.url, 'POST', '/v1/checkout', {
        rawBody: body,
        headers: { 'content-type': 'application/json; charset=utf-8', 'idempotency-key': newKey() },
      });
      expect(json.status).toBe(201);
    });

    test('the bearer scheme is case-insensitive (RFC 9110), the token is not', async () => {
      const put = (authorization: string) =>
        call(h.service.url, 'PUT', '/admin/inventory/HTTP-2', {
          body: { available: 5, priceCents: 100 },
          headers: { authorization },
        });
      for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
        expect({ scheme, status: (await put(`${scheme} ${ADMIN_TOKEN}`)).status }).toEqual({
          scheme,
          status: 200,
        });
      }
      expect((await put(`Bearer ${ADMIN_TOKEN.toUpperCase()}`)).status).toBe(401);
      expect((await put(`Basic ${ADMIN_TOKEN}`)).status).toBe(401);
      expect((await put('Bearer')).status).toBe(401);
    });

    test('idempotency keys of 1 to 255 printable ASCII characters are accepted, others are 400', async () => {
      const body = checkoutBody({ items: [{ sku: 'HTTP-1', quantity: 1 }] });
      const suffix = newKey('k');
      for (const key of [
        'a',
        '42',
        `order 42 ${suffix}`,
        `${suffix}-${'x'.repeat(255 - suffix.length - 1)}`,
      ]) {
        expect({ key, status: (await checkout(h.service.url, key, body)).status }).toEqual({
          key,
          status: 201,
        });
      }
      expect((await checkout(h.service.url, 'x'.repeat(256), body)).status).toBe(400);
      // A latin-1 byte is not printable ASCII (fetch refuses to send one; node's client does not).
      const latin1 = await new Promise<number>((resolve, reject) => {
        const req = request(
          `${h.service.url}/v1/checkout`,
          { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'caf\xe9' } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
      expect(latin1).toBe(400);
    });
  });
});
