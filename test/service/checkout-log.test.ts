/**
 * What the HTTP layer logs for checkouts and order reads: one `checkout` line per outcome
 * with the order id and request id, the ids on every line of the request's logger, and the
 * trace handed to the checkout (its request id goes into the order's outbox message).
 * The checkout is a fake: no database needed.
 */
import { randomUUID } from 'node:crypto';
import { CheckoutReply } from '../../service/checkout';
import { orderIdForKey } from '../../service/orders/order-id';
import { REQUEST_ID_MAX_LENGTH, acceptedRequestId } from '../../service/orders/trace';
import {
  CHECKOUT_BODY,
  LEVEL,
  LogLine,
  appWithFakeCheckout,
  capturingLogger,
  listen,
  send,
} from './helpers/log-capture';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A checkout through the app over a fake answering `reply` (or throwing it). */
async function checkoutWith(
  reply: CheckoutReply | Error,
  headers: Record<string, string> = {},
  body: unknown = CHECKOUT_BODY,
) {
  const { logger, lines } = capturingLogger();
  const { app, calls } = appWithFakeCheckout(async () => {
    if (reply instanceof Error) throw reply;
    return reply;
  }, logger);
  try {
    await listen(app, lines);
    const response = await send(app, 'POST', '/v1/checkout', headers, body);
    return { response, lines, calls };
  } finally {
    await app.close();
  }
}

const confirmed = (orderId: string): CheckoutReply => ({
  statusCode: 201,
  body: { orderId, status: 'CONFIRMED', recommendations: [], degraded: [] },
});

describe('the checkout line', () => {
  const key = `log-key-${randomUUID()}`;
  const orderId = orderIdForKey(key);
  const headers = { 'idempotency-key': key, 'x-request-id': 'req-trace-0001' };

  test.each<[string, CheckoutReply, string, string]>([
    ['confirmed', confirmed(orderId), 'CONFIRMED', 'CONFIRMED'],
    [
      'deferred to payment-retry',
      { statusCode: 201, body: { orderId, status: 'PENDING_PAYMENT', recommendations: [], degraded: [] } },
      'DEFERRED',
      'PENDING_PAYMENT',
    ],
    [
      'declined',
      { statusCode: 402, body: { error: 'PAYMENT_DECLINED', orderId, reason: 'card_declined' } },
      'DECLINED',
      'PAYMENT_DECLINED',
    ],
    ['an idempotent replay', { ...confirmed(orderId), replayed: true }, 'REPLAYED', 'CONFIRMED'],
    [
      'out of stock',
      { statusCode: 409, body: { error: 'OUT_OF_STOCK', sku: 'SKU-TRACE', reason: 'insufficient-stock' } },
      'REJECTED',
      'OUT_OF_STOCK',
    ],
    [
      'a duplicate still in progress (503)',
      { statusCode: 503, body: { error: 'REQUEST_IN_PROGRESS', message: 'm' }, retryAfterSeconds: 1 },
      'FAILED',
      'REQUEST_IN_PROGRESS',
    ],
  ])(
    '%s: exactly one line, with orderId, requestId, outcome, status, code and durationMs',
    async (_, reply, outcome, code) => {
      // GIVEN a checkout that comes to `reply`
      // WHEN it is requested with a key and an x-request-id
      const { response, lines } = await checkoutWith(reply, headers);
      // THEN the client gets the reply, and the request wrote one line, at info, saying so
      expect(response.status).toBe(reply.statusCode);
      expect(lines).toEqual([
        {
          level: LEVEL.info,
          time: expect.any(Number),
          pid: process.pid,
          hostname: expect.any(String),
          requestId: 'req-trace-0001',
          orderId,
          outcome,
          status: reply.statusCode,
          code,
          durationMs: expect.any(Number),
          msg: 'checkout',
        },
      ]);
    },
  );

  test('a checkout that fails (5xx) writes its one line at error, with the error, and nothing else', async () => {
    // GIVEN a checkout whose database is unreachable
    const { response, lines } = await checkoutWith(new Error('connect ECONNREFUSED 127.0.0.1:5432'), headers);
    // THEN 503, and one line: the checkout's, at error, with the order id and the error
    expect(response.status).toBe(503);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: LEVEL.error,
      msg: 'checkout',
      requestId: 'req-trace-0001',
      orderId,
      outcome: 'FAILED',
      status: 503,
      code: 'UNAVAILABLE',
      err: { message: 'connect ECONNREFUSED 127.0.0.1:5432' },
    });
  });

  test('a request the schema refuses is one REJECTED line, with the order id its key names', async () => {
    // GIVEN a body without a payment token, under a valid key
    const { response, lines, calls } = await checkoutWith(confirmed(orderId), headers, {
      customerId: 'c',
      items: [{ sku: 'SKU-1', quantity: 1 }],
    });
    // THEN 400, no checkout, and one line naming the order the key would have made
    expect(response.status).toBe(400);
    expect(calls).toEqual([]);
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'checkout',
        requestId: 'req-trace-0001',
        orderId,
        outcome: 'REJECTED',
        status: 400,
        code: 'INVALID_REQUEST',
      }),
    ]);
  });

  test('without an Idempotency-Key there is no order: the line has no orderId', async () => {
    const { response, lines } = await checkoutWith(confirmed(orderId), { 'x-request-id': 'req-no-key' });
    expect(response.status).toBe(400);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'checkout', requestId: 'req-no-key', outcome: 'REJECTED' });
    expect(lines[0]).not.toHaveProperty('orderId');
  });

  test('the checkout is handed the trace: the key, its order id and the request id', async () => {
    const { calls } = await checkoutWith(confirmed(orderId), headers);
    expect(calls.map((c) => c.trace)).toEqual([{ key, orderId, requestId: 'req-trace-0001' }]);
  });

  test('without a logger the checkout is still handed the trace', async () => {
    const { app, calls } = appWithFakeCheckout(async () => confirmed(orderId), undefined);
    try {
      await listen(app);
      const response = await send(app, 'POST', '/v1/checkout', { 'idempotency-key': key }, CHECKOUT_BODY);
      expect(response.status).toBe(201);
      expect(calls).toHaveLength(1);
      expect(calls[0].trace).toEqual({ key, orderId, requestId: expect.stringMatching(UUID) });
    } finally {
      await app.close();
    }
  });
});

describe('request ids', () => {
  const key = `rid-key-${randomUUID()}`;
  const requestIdOf = async (headers: Record<string, string>) => {
    const { lines } = await checkoutWith(confirmed(orderIdForKey(key)), {
      'idempotency-key': key,
      ...headers,
    });
    expect(lines).toHaveLength(1);
    return lines[0].requestId;
  };

  test.each([
    ['a UUID', '0b6f3c9e-8f0a-4a8e-9d6b-0c2a1e4f5d7a'],
    ['an AWS trace header', 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1'],
    ['a hex id', 'a3f9c2e1b7d84f6e9a0c1b2d3e4f5a6b'],
    ['the longest accepted', 'r'.repeat(REQUEST_ID_MAX_LENGTH)],
  ])('the client x-request-id is used when it is %s', async (_, id) => {
    expect(await requestIdOf({ 'x-request-id': id })).toBe(id);
  });

  test.each([
    ['absent', {}],
    ['too long', { 'x-request-id': 'r'.repeat(REQUEST_ID_MAX_LENGTH + 1) }],
    ['with a space', { 'x-request-id': 'two words' }],
    ['with a quote', { 'x-request-id': 'a"b' }],
    ['with a line break escaped in', { 'x-request-id': 'a\\nb' }],
    ['empty', { 'x-request-id': '' }],
  ])('a random UUID is used when the header is %s', async (_, headers: Record<string, string>) => {
    expect(await requestIdOf(headers)).toMatch(UUID);
  });

  test('acceptedRequestId refuses a repeated header (node gives an array, or joins it with commas)', () => {
    expect(acceptedRequestId(['a', 'b'])).toBeUndefined();
    expect(acceptedRequestId('a, b')).toBeUndefined();
    expect(acceptedRequestId(undefined)).toBeUndefined();
  });
});

describe("the request's own logger", () => {
  /** Lines written by the request's logger (request.log) in an onResponse hook, plus the app's. */
  async function probe(method: 'POST' | 'GET', url: string, headers: Record<string, string>) {
    const { logger, lines } = capturingLogger();
    const { app } = appWithFakeCheckout(async ({ trace }) => confirmed(trace!.orderId), logger);
    app.addHook('onResponse', async (request) => request.log.warn('probe'));
    try {
      await listen(app, lines);
      await send(app, method, url, headers, method === 'POST' ? CHECKOUT_BODY : undefined);
      return lines;
    } finally {
      await app.close();
    }
  }

  test('on the checkout route, every line it writes carries orderId and requestId', async () => {
    const key = `probe-key-${randomUUID()}`;
    const lines = await probe('POST', '/v1/checkout', {
      'idempotency-key': key,
      'x-request-id': 'req-probe-1',
    });
    const probeLines = lines.filter((l: LogLine) => l.msg === 'probe');
    expect(probeLines).toEqual([
      expect.objectContaining({ level: LEVEL.warn, requestId: 'req-probe-1', orderId: orderIdForKey(key) }),
    ]);
    // fastify's own two lines stay off on this route: the checkout line and the probe only
    expect(lines.map((l) => l.msg).sort()).toEqual(['checkout', 'probe']);
  });

  test("on the order route, fastify's lines and the request's carry the order id of the URL, in lower case", async () => {
    const id = randomUUID();
    const lines = await probe('GET', `/v1/orders/${id.toUpperCase()}`, { 'x-request-id': 'req-probe-2' });
    expect(lines.map((l) => l.msg).sort()).toEqual(['incoming request', 'probe', 'request completed']);
    for (const line of lines) expect(line).toMatchObject({ requestId: 'req-probe-2', orderId: id });
    expect(lines.some((l) => 'reqId' in l)).toBe(false);
  });

  test('on other routes, lines carry requestId and no orderId', async () => {
    const lines = await probe('GET', '/health/live', { 'x-request-id': 'req-probe-3' });
    expect(lines.map((l) => l.msg).sort()).toEqual(['incoming request', 'probe', 'request completed']);
    for (const line of lines) {
      expect(line.requestId).toBe('req-probe-3');
      expect(line).not.toHaveProperty('orderId');
    }
  });
});
