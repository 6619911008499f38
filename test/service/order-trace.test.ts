/**
 * Tracing an order through the service (docs/observability.md, "Tracing an order"): the
 * checkout's one line, the outbox relay's line for its message, and the request id in the
 * SQS message the workers receive; and the relay's failure lines, each on its order's trace.
 */
import { randomUUID } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Pool } from 'pg';
import { loadServiceConfig } from '../../service/config';
import { createPool } from '../../service/db/pool';
import { migrate } from '../../service/db/migrations';
import { FakePaymentGateway } from '../../service/fakes/payment-gateway';
import { FakeRecommendations } from '../../service/fakes/recommendations';
import { FakeSqs, FakeSqsMessage } from '../../service/fakes/sqs';
import { Metrics } from '../../service/metrics';
import { orderIdForKey } from '../../service/orders/order-id';
import { OutboxRelay } from '../../service/outbox/relay';
import { RunningService, startService } from '../../service/server';
import { TestDatabase, createTestDatabase, describeWithPostgres } from './helpers/database';
import { call, checkoutBody, newKey, serviceEnv, setStock } from './helpers/harness';
import { LEVEL, LogLine, capturingLogger } from './helpers/log-capture';
import { waitFor } from './helpers/wait-for';

const queueUrl = (endpoint: string, name: string) => `${endpoint}/000000000000/${name}`;

describeWithPostgres('tracing an order through the service', () => {
  let db: TestDatabase;
  let sqs: FakeSqs;
  let payment: FakePaymentGateway;
  let recommendations: FakeRecommendations;
  let service: RunningService;
  let lines: LogLine[];
  let savedEndpoint: string | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    sqs = new FakeSqs({ queues: ['order-events', 'payment-retry'] });
    const endpoint = await sqs.listen();
    savedEndpoint = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = endpoint; // the relay's SQS client, as in test/service/outbox.test.ts
    payment = new FakePaymentGateway();
    recommendations = new FakeRecommendations();
    const config = loadServiceConfig(
      serviceEnv(db, await payment.listen(), await recommendations.listen(), {
        ORDER_EVENTS_QUEUE_URL: queueUrl(endpoint, 'order-events'),
        PAYMENT_RETRY_QUEUE_URL: queueUrl(endpoint, 'payment-retry'),
        OUTBOX_INTERVAL_MS: '20',
        PAYMENT_BREAKER_THRESHOLD: '1000',
      }),
    );
    const capture = capturingLogger('info');
    lines = capture.lines;
    service = await startService(config, capture.logger);
    await setStock(service.url, 'TRACE-1', 1_000);
  }, 60_000);
  afterAll(async () => {
    await service?.shutdown('test finished');
    await payment?.close();
    await recommendations?.close();
    await sqs?.close();
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = savedEndpoint;
    await db?.drop();
  });
  beforeEach(() => payment.set({ mode: 'ok', errorRate: 0, latencyMs: 0 }));

  /** A checkout with the client's request id. */
  const checkout = (key: string, body: unknown, requestId: string) =>
    call(service.url, 'POST', '/v1/checkout', {
      body,
      headers: { 'idempotency-key': key, 'x-request-id': requestId },
    });

  /** The SQS message sent for an order, once the relay has sent it. */
  const messageFor = (queue: string, orderId: string) =>
    waitFor(
      () => {
        const m = sqs.messages.find(
          (msg) => msg.queueUrl.endsWith(`/${queue}`) && JSON.parse(msg.body).orderId === orderId,
        );
        return m && { message: m, body: JSON.parse(m.body) as Record<string, unknown> };
      },
      { timeoutMs: 5_000, message: `no ${queue} message for order ${orderId}` },
    );

  /** The relay's line for one message, once written. */
  const sentLine = (eventId: unknown) =>
    waitFor(() => lines.find((l) => l.msg === 'outbox message sent' && l.eventId === eventId), {
      message: `no "outbox message sent" line for ${String(eventId)}`,
    });

  /** What the checkout line, the message and the relay's line say of one checkout. */
  async function traced(
    queue: string,
    requestId: string,
    key: string,
    body = checkoutBody({ items: [{ sku: 'TRACE-1', quantity: 1 }] }),
  ) {
    const response = await checkout(key, body, requestId);
    const orderId = orderIdForKey(key);
    const { message, body: sent } = await messageFor(queue, orderId);
    const outboxLine = await sentLine(sent.eventId);
    return { response, orderId, message, sent, outboxLine };
  }

  const linesOf = (requestId: string) => lines.filter((l) => l.requestId === requestId);

  test('a confirmed order: one checkout line, its OrderConfirmed carries the request id, and the relay logs the send', async () => {
    // GIVEN a checkout with a request id of the client's
    const requestId = `trace-confirmed-${randomUUID()}`;
    const key = newKey('trace');
    // WHEN it is confirmed and the relay publishes its event
    const { response, orderId, message, sent, outboxLine } = await traced('order-events', requestId, key);
    expect(response.status).toBe(201);
    expect(response.body.orderId).toBe(orderId);

    // THEN the SQS message carries the request id next to the order id and the event id
    expect(sent).toMatchObject({
      type: 'OrderConfirmed',
      orderId,
      requestId,
      eventId: `${orderId}/OrderConfirmed`,
    });
    // AND the relay's line names the order, the event, the request and SQS's message id
    expect(outboxLine).toMatchObject({
      level: LEVEL.info,
      destination: 'order-events',
      orderId,
      eventId: sent.eventId,
      requestId,
      messageId: message.messageId,
    });
    // AND the request itself wrote exactly one line: the checkout's
    expect(
      linesOf(requestId)
        .map((l) => l.msg)
        .sort(),
    ).toEqual(['checkout', 'outbox message sent']);
    expect(linesOf(requestId).find((l) => l.msg === 'checkout')).toMatchObject({
      level: LEVEL.info,
      orderId,
      outcome: 'CONFIRMED',
      status: 201,
      code: 'CONFIRMED',
      durationMs: expect.any(Number),
    });
  });

  test('a declined order: DECLINED, and its OrderPaymentDeclined carries the request id', async () => {
    const requestId = `trace-declined-${randomUUID()}`;
    const { response, orderId, sent, outboxLine } = await traced(
      'order-events',
      requestId,
      newKey('trace'),
      checkoutBody({ items: [{ sku: 'TRACE-1', quantity: 1 }], paymentToken: 'tok_decline' }),
    );
    expect(response.status).toBe(402);
    expect(sent).toMatchObject({ type: 'OrderPaymentDeclined', orderId, requestId });
    expect(outboxLine).toMatchObject({ orderId, requestId, eventId: sent.eventId });
    expect(linesOf(requestId).find((l) => l.msg === 'checkout')).toMatchObject({
      orderId,
      outcome: 'DECLINED',
      status: 402,
    });
  });

  test('an idempotent replay: one REPLAYED line under its own request id, and no second message', async () => {
    // GIVEN a confirmed order
    const key = newKey('trace');
    const first = `trace-first-${randomUUID()}`;
    const { orderId, sent } = await traced('order-events', first, key);
    // WHEN the client sends it again, with another request id
    const again = `trace-again-${randomUUID()}`;
    const response = await checkout(key, checkoutBody({ items: [{ sku: 'TRACE-1', quantity: 1 }] }), again);
    // THEN it gets the same answer, logged as a replay of that order
    expect(response.status).toBe(201);
    expect(linesOf(again)).toEqual([
      expect.objectContaining({
        msg: 'checkout',
        orderId,
        outcome: 'REPLAYED',
        status: 201,
        code: 'CONFIRMED',
      }),
    ]);
    // AND the order has one outbox message, the first request's
    const rows = await db.query<{ payload: Record<string, unknown> }>(
      "SELECT payload FROM outbox WHERE payload->>'orderId' = $1",
      [orderId],
    );
    expect(rows.map((r) => r.payload.requestId)).toEqual([first]);
    expect(sent.requestId).toBe(first);
  });

  test('a deferred order: DEFERRED, and its PaymentDeferred to payment-retry carries the request id', async () => {
    // GIVEN a gateway that fails every attempt
    payment.set({ mode: 'error' });
    const requestId = `trace-deferred-${randomUUID()}`;
    const { response, orderId, sent, outboxLine } = await traced('payment-retry', requestId, newKey('trace'));
    expect(response.status).toBe(201);
    expect(response.body.status).toBe('PENDING_PAYMENT');
    expect(sent).toMatchObject({ type: 'PaymentDeferred', orderId, requestId });
    expect(outboxLine).toMatchObject({
      destination: 'payment-retry',
      orderId,
      requestId,
      eventId: sent.eventId,
    });
    expect(linesOf(requestId).find((l) => l.msg === 'checkout')).toMatchObject({
      orderId,
      outcome: 'DEFERRED',
      status: 201,
      code: 'PENDING_PAYMENT',
    });
  });
});

describeWithPostgres("the outbox relay's lines on an order's trace", () => {
  let db: TestDatabase;
  let pool: Pool;
  let sqs: FakeSqs;
  let endpoint: string;
  const relays: OutboxRelay[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = createPool(loadServiceConfig(serviceEnv(db, 'http://127.0.0.1:9', 'http://127.0.0.1:9')));
    await migrate(pool);
    sqs = new FakeSqs({ queues: ['order-events', 'payment-retry'] });
    endpoint = await sqs.listen();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await sqs?.close();
    await pool?.end();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.query('DELETE FROM outbox');
    sqs.messages.length = 0;
    sqs.entryFailure = () => undefined;
    sqs.setQueueMode('order-events', undefined);
    sqs.setQueueMode('payment-retry', undefined);
  });

  function relay() {
    const capture = capturingLogger('info');
    const r = new OutboxRelay({
      pool,
      sqs: new SQSClient({ endpoint, region: 'us-east-1', maxAttempts: 1 }),
      queueUrls: {
        'order-events': queueUrl(endpoint, 'order-events'),
        'payment-retry': queueUrl(endpoint, 'payment-retry'),
      },
      batchSize: 10,
      metrics: new Metrics(),
      sendTimeoutMs: 1_000,
      maxBackoffMs: 1_000,
      logger: capture.logger,
    });
    relays.push(r);
    return { relay: r, lines: capture.lines };
  }

  /** Inserts one outbox row per payload; returns each row's event id (its order and type) with its payload. */
  async function insert(destination: string, payloads: Record<string, unknown>[]) {
    const rows = await db.query<{ id: string; payload: Record<string, unknown> }>(
      'INSERT INTO outbox (destination, payload) SELECT $1, p FROM unnest($2::jsonb[]) AS p RETURNING id, payload',
      [destination, payloads.map((p) => JSON.stringify(p))],
    );
    return rows.map((r) => ({
      eventId: `${r.payload.orderId as string}/${r.payload.type as string}`,
      orderId: r.payload.orderId as string,
      requestId: r.payload.requestId as string | undefined,
    }));
  }

  const order = (extra: Record<string, unknown> = {}) => ({
    type: 'OrderConfirmed',
    orderId: randomUUID(),
    requestId: `req-${randomUUID()}`,
    ...extra,
  });

  test('each message sent is one line with its orderId, eventId, requestId and SQS message id', async () => {
    // GIVEN two messages, one without a request id (the sweep and the reconciler write none)
    const [withRequest, withoutRequest] = await insert('order-events', [
      order(),
      order({ requestId: undefined }),
    ]);
    const { relay: r, lines } = relay();
    // WHEN they are published
    await r.publishPending();
    // THEN there is one line per message, matching what SQS got
    const byEvent = (m: FakeSqsMessage) => JSON.parse(m.body).eventId as string;
    const sqsIds = new Map(sqs.messages.map((m) => [byEvent(m), m.messageId]));
    expect(lines.filter((l) => l.msg === 'outbox message sent')).toEqual([
      expect.objectContaining({
        level: LEVEL.info,
        destination: 'order-events',
        orderId: withRequest.orderId,
        eventId: withRequest.eventId,
        requestId: withRequest.requestId,
        messageId: sqsIds.get(withRequest.eventId),
      }),
      expect.objectContaining({
        orderId: withoutRequest.orderId,
        eventId: withoutRequest.eventId,
        messageId: sqsIds.get(withoutRequest.eventId),
      }),
    ]);
    expect(lines.find((l) => l.eventId === withoutRequest.eventId)).not.toHaveProperty('requestId');
  });

  test('a message SQS refuses for good: its "parked" line is on its order\u2019s trace', async () => {
    const [refused] = await insert('order-events', [order({ note: 'refuse me' })]);
    sqs.entryFailure = (body) =>
      body.includes('refuse me') ? { Code: 'InvalidMessageContents', SenderFault: true } : undefined;
    const { relay: r, lines } = relay();
    await r.publishPending();
    expect(lines.filter((l) => l.msg.startsWith('outbox message parked'))).toEqual([
      expect.objectContaining({
        level: LEVEL.error,
        orderId: refused.orderId,
        eventId: refused.eventId,
        requestId: refused.requestId,
        reason: expect.stringMatching(/^InvalidMessageContents/),
      }),
    ]);
  });

  test('a send that fails: the destination line for the operator, then one line per row left pending', async () => {
    // GIVEN two deferred payments for a queue that answers 500
    const rows = await insert('payment-retry', [
      order({ type: 'PaymentDeferred' }),
      order({ type: 'PaymentDeferred' }),
    ]);
    sqs.setQueueMode('payment-retry', 'error');
    const { relay: r, lines } = relay();
    // WHEN a pass runs
    await r.publishPending();
    // THEN one line says the destination failed, and each row's line names its order
    expect(lines.filter((l) => l.destination === 'payment-retry' && l.rows === 2)).toHaveLength(1);
    const pending = lines.filter((l) => l.msg === 'outbox message not sent; it stays pending');
    expect(pending).toEqual(
      rows.map((row) =>
        expect.objectContaining({
          level: LEVEL.warn,
          destination: 'payment-retry',
          orderId: row.orderId,
          eventId: row.eventId,
          requestId: row.requestId,
          reason: expect.stringMatching(/InternalError/),
        }),
      ),
    );
  });
});
