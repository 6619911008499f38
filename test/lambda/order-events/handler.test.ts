import { createHash, randomUUID } from 'node:crypto';
import { FullBatchFailureError } from '@aws-lambda-powertools/batch';
import { DownstreamError } from '../../../lambda/shared/errors';
import type { AppliedEvent } from '../../../lambda/order-events/fulfilment';
import { createOrderEventsHandler, readOrderEventsEnv } from '../../../lambda/order-events/handler';
import type { OrderEvent } from '../../../lambda/order-events/schema';
import { InMemoryPersistenceLayer } from '../../helpers/in-memory-idempotency';
import { FakeLogger, FakeMetrics, lambdaContext, sqsEvent, sqsRecord } from '../../helpers/lambda';

/** An order event as the checkout service's outbox relay publishes it. */
function orderEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventId: `outbox-${Math.floor(Math.random() * 1e9)}`,
    type: 'OrderConfirmed',
    orderId: randomUUID(),
    customerId: 'customer-1',
    amountCents: 2_500,
    currency: 'EUR',
    ...overrides,
  };
}

function setup(apply?: (event: OrderEvent) => Promise<AppliedEvent>) {
  const applied: OrderEvent[] = [];
  const logger = new FakeLogger();
  const metrics = new FakeMetrics();
  const store = new InMemoryPersistenceLayer();
  const handler = createOrderEventsHandler({
    logger,
    metrics,
    persistenceStore: store,
    expiresAfterSeconds: 19 * 86_400,
    apply:
      apply ??
      (async (event) => {
        applied.push(event);
        return { eventId: event.eventId, type: event.type, orderId: event.orderId, via: 'log' };
      }),
  });
  return { handler, applied, logger, metrics, store };
}

describe('order-events handler (injected fakes)', () => {
  test('applies a valid event and reports no failure', async () => {
    // GIVEN one OrderConfirmed event
    const { handler, applied, metrics } = setup();
    const body = orderEvent();
    // WHEN the batch is handled
    const result = await handler(sqsEvent(sqsRecord(JSON.stringify(body))), lambdaContext());
    // THEN it was applied once, with every field passed on, and counted
    expect(result).toEqual({ batchItemFailures: [] });
    expect(applied).toEqual([body]);
    expect(metrics.counts).toEqual({ EventsApplied: 1 });
    expect(metrics.published).toBe(1);
  });

  test('the same event in a second message (a new messageId) is not applied again', async () => {
    // GIVEN an event applied once
    const { handler, applied, store } = setup();
    const event = orderEvent();
    const body = JSON.stringify(event);
    await handler(sqsEvent(sqsRecord(body)), lambdaContext());
    // WHEN a copy arrives again, as a relay re-send or a redrive from the DLQ delivers it
    const result = await handler(sqsEvent(sqsRecord(body)), lambdaContext());
    // THEN it succeeds without applying, and one record holds the event, keyed on the
    // eventId alone (Powertools hashes the value the key expression selects)
    expect(result).toEqual({ batchItemFailures: [] });
    expect(applied).toHaveLength(1);
    const eventIdHash = createHash('md5').update(JSON.stringify(event.eventId)).digest('base64');
    expect([...store.records.keys()]).toEqual([`order-events#${eventIdHash}`]);
  });

  test('two copies in one batch apply once; the other is retried, then finds the event applied', async () => {
    // GIVEN a batch holding two copies of one event (records run in parallel)
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const applied: string[] = [];
    const { handler } = setup(async (event) => {
      applied.push(event.eventId);
      await gate;
      return { eventId: event.eventId, type: event.type, orderId: event.orderId, via: 'log' };
    });
    const body = JSON.stringify(orderEvent());
    const first = sqsRecord(body);
    const second = sqsRecord(body);
    // WHEN the batch is handled while the first copy is still being applied
    const pending = handler(sqsEvent(first, second), lambdaContext());
    setTimeout(release, 20);
    const result = await pending;
    // THEN one copy applied and the other failed as a batch item (in progress)...
    expect(applied).toHaveLength(1);
    expect(result.batchItemFailures).toHaveLength(1);
    const failed = result.batchItemFailures[0].itemIdentifier;
    expect([first.messageId, second.messageId]).toContain(failed);
    // ...and its redelivery finds the event applied
    const retry = await handler(sqsEvent(sqsRecord(body)), lambdaContext());
    expect(retry).toEqual({ batchItemFailures: [] });
    expect(applied).toHaveLength(1);
  });

  test.each([
    ['not JSON', '{"eventId": "outbox-1", ', /body is not JSON/],
    ['no orderId', JSON.stringify({ eventId: 'outbox-2', type: 'OrderConfirmed' }), /orderId/],
    ['an orderId that is not a UUID', JSON.stringify(orderEvent({ orderId: '42' })), /orderId/],
    ['no eventId', JSON.stringify(orderEvent({ eventId: undefined })), /eventId/],
    ['a type that is not an order event', JSON.stringify(orderEvent({ type: 'PaymentDeferred' })), /type/],
  ])(
    'a malformed message (%s) fails alone, logged with its messageId, and the rest of the batch applies',
    async (_case, body, problem) => {
      // GIVEN a batch with one malformed message between two good ones
      const { handler, applied, logger, metrics } = setup();
      const bad = sqsRecord(body, {
        attributes: { ...sqsRecord('').attributes, ApproximateReceiveCount: '3' },
      });
      // WHEN it is handled
      const result = await handler(
        sqsEvent(sqsRecord(JSON.stringify(orderEvent())), bad, sqsRecord(JSON.stringify(orderEvent()))),
        lambdaContext(),
      );
      // THEN only the malformed message is returned for retry (ending in the DLQ after
      // maxReceiveCount receives), logged with its id and problem, and counted
      expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: bad.messageId }] });
      expect(applied).toHaveLength(2);
      const errors = logger.at('error');
      expect(errors).toHaveLength(1);
      expect(errors[0].message).toMatch(/malformed order event/);
      expect(errors[0].extra).toMatchObject({ messageId: bad.messageId, receiveCount: 3 });
      expect((errors[0].extra.problems as string[]).join('; ')).toMatch(problem);
      expect(metrics.counts.MalformedMessages).toBe(1);
    },
  );

  test('a batch in which every record fails throws, so Lambda counts an error and retries it whole', async () => {
    const { handler } = setup();
    await expect(handler(sqsEvent(sqsRecord('nope'), sqsRecord('{}')), lambdaContext())).rejects.toThrow(
      FullBatchFailureError,
    );
  });

  test('a fulfilment failure is retried (transient), then applies once', async () => {
    // GIVEN a fulfilment endpoint that fails once with 503
    let calls = 0;
    const { handler, logger } = setup(async (event) => {
      calls++;
      if (calls === 1) throw new DownstreamError('fulfilment endpoint answered 503', 503);
      return { eventId: event.eventId, type: event.type, orderId: event.orderId, via: 'fulfilment' };
    });
    const body = JSON.stringify(orderEvent());
    const good = sqsRecord(JSON.stringify(orderEvent()));
    const failing = sqsRecord(body);
    // WHEN the batch is handled, then the failed record is redelivered
    const first = await handler(sqsEvent(failing, good), lambdaContext());
    const retry = await handler(sqsEvent(sqsRecord(body)), lambdaContext());
    // THEN the first attempt is a batch item failure logged as transient, and the retry
    // applies it (the failed attempt left no record behind)
    expect(first).toEqual({ batchItemFailures: [{ itemIdentifier: failing.messageId }] });
    expect(logger.at('warn')[0].extra).toMatchObject({ messageId: failing.messageId, transient: true });
    expect(retry).toEqual({ batchItemFailures: [] });
    expect(calls).toBe(3);
  });

  test('an eventId reused for another order is refused, not treated as a duplicate', async () => {
    // GIVEN an applied event
    const { handler, applied, logger } = setup();
    const body = orderEvent();
    await handler(sqsEvent(sqsRecord(JSON.stringify(body))), lambdaContext());
    // WHEN another order's event arrives with the same eventId (a producer bug)
    const clash = sqsRecord(JSON.stringify({ ...body, orderId: randomUUID() }));
    const result = await handler(sqsEvent(clash, sqsRecord(JSON.stringify(orderEvent()))), lambdaContext());
    // THEN it fails (and will reach the DLQ for a person to look at), logged as permanent
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: clash.messageId }] });
    expect(applied).toHaveLength(2);
    expect(logger.at('error')[0].extra).toMatchObject({ messageId: clash.messageId, transient: false });
  });
});

describe('readOrderEventsEnv', () => {
  test('reads the table, the record lifetime and the optional endpoint', () => {
    expect(
      readOrderEventsEnv({ IDEMPOTENCY_TABLE_NAME: 't', IDEMPOTENCY_EXPIRES_AFTER_SECONDS: '1641600' }),
    ).toEqual({
      tableName: 't',
      expiresAfterSeconds: 1_641_600,
      fulfilmentUrl: undefined,
      fulfilmentTimeoutMs: 5_000,
    });
  });

  test.each([
    [{ IDEMPOTENCY_EXPIRES_AFTER_SECONDS: '60' }, /IDEMPOTENCY_TABLE_NAME is required/],
    [{ IDEMPOTENCY_TABLE_NAME: 't' }, /IDEMPOTENCY_EXPIRES_AFTER_SECONDS is required/],
    [{ IDEMPOTENCY_TABLE_NAME: 't', IDEMPOTENCY_EXPIRES_AFTER_SECONDS: '1.5' }, /must be a whole number/],
  ])('refuses %j', (env, message) => {
    expect(() => readOrderEventsEnv(env)).toThrow(message);
  });
});
