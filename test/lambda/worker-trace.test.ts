/**
 * The SQS workers' log lines on an order's trace (docs/observability.md, "Tracing an
 * order"): every line written while a record is handled carries that record's messageId,
 * orderId, eventId and the requestId of the checkout behind it, and never another
 * record's, whether the records of a batch run at once or invocations follow each other.
 */
import { randomUUID } from 'node:crypto';
import type { SQSRecord } from 'aws-lambda';
import { logFulfilment } from '../../lambda/order-events/fulfilment';
import { createOrderEventsHandler } from '../../lambda/order-events/handler';
import type { OrderEvent } from '../../lambda/order-events/schema';
import { createPaymentRetryHandler } from '../../lambda/payment-retry/handler';
import { DownstreamError } from '../../lambda/shared/errors';
import { InMemoryPersistenceLayer } from '../helpers/in-memory-idempotency';
import { FakeLogger, FakeMetrics, LogEntry, lambdaContext, sqsEvent, sqsRecord } from '../helpers/lambda';

/** Resolves when `open()` has been called: lets every record of a batch start before any goes on. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

/** The trace keys of a line (the fields the documented queries read). */
const traceOf = (e: LogEntry) => ({
  messageId: e.extra.messageId,
  orderId: e.extra.orderId,
  eventId: e.extra.eventId,
  requestId: e.extra.requestId,
});

/** What a record's lines must carry: its own ids (requestId absent for a message without one). */
const expectedTrace = (record: SQSRecord) => {
  const body = JSON.parse(record.body) as Record<string, unknown>;
  return {
    messageId: record.messageId,
    orderId: body.orderId,
    eventId: body.eventId,
    requestId: body.requestId,
  };
};

const orderEvent = (overrides: Record<string, unknown> = {}) => ({
  eventId: `outbox-${Math.floor(Math.random() * 1e9)}`,
  type: 'OrderConfirmed',
  orderId: randomUUID(),
  requestId: `req-${randomUUID()}`,
  ...overrides,
});

describe('order-events worker', () => {
  /** The handler whose `apply` waits for `g`, then writes the no-endpoint log line (or fails for `failing`). */
  function setup(g: ReturnType<typeof gate>, failing?: string) {
    const logger = new FakeLogger();
    const log = logFulfilment(logger);
    const handler = createOrderEventsHandler({
      logger,
      metrics: new FakeMetrics(),
      persistenceStore: new InMemoryPersistenceLayer(),
      expiresAfterSeconds: 86_400,
      apply: async (event: OrderEvent) => {
        await g.wait();
        if (event.orderId === failing) throw new DownstreamError('fulfilment endpoint answered 503', 503);
        return log(event);
      },
    });
    return { handler, logger };
  }

  test("records of one batch run at once; each line carries its own record's keys, never another's", async () => {
    // GIVEN a batch of three events, one from an older producer without a request id and
    // one whose fulfilment fails, all in flight at the same time
    const g = gate();
    const failing = orderEvent();
    const records = [orderEvent(), orderEvent({ requestId: undefined }), failing].map((e) =>
      sqsRecord(JSON.stringify(e)),
    );
    const { handler, logger } = setup(g, failing.orderId);
    // WHEN the batch is handled
    const pending = handler(sqsEvent(...records), lambdaContext());
    setTimeout(g.open, 20);
    const result = await pending;
    // THEN each record wrote its line (applied, or retried), and each line names that record alone
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: records[2].messageId }]);
    expect(logger.entries).toHaveLength(3);
    for (const record of records) {
      const mine = logger.entries.filter((e) => e.extra.messageId === record.messageId);
      expect(mine).toHaveLength(1);
      expect(traceOf(mine[0])).toEqual(expectedTrace(record));
    }
    expect(logger.entries.find((e) => e.extra.messageId === records[1].messageId)?.extra).not.toHaveProperty(
      'requestId',
    );
    expect(logger.at('warn')[0].message).toBe('order event not applied, will be retried');
  });

  test('a later invocation carries none of the earlier one\u2019s keys', async () => {
    const g = gate();
    g.open();
    const { handler, logger } = setup(g);
    const first = sqsRecord(JSON.stringify(orderEvent()));
    const second = sqsRecord(JSON.stringify(orderEvent({ requestId: undefined })));
    await handler(sqsEvent(first), lambdaContext());
    await handler(sqsEvent(second), lambdaContext());
    expect(logger.entries.map(traceOf)).toEqual([expectedTrace(first), expectedTrace(second)]);
    expect(logger.entries[1].extra).not.toHaveProperty('requestId');
  });

  test('a malformed message is logged with the order it names, if it names one', async () => {
    const g = gate();
    g.open();
    const { handler, logger } = setup(g);
    const bad = orderEvent({ type: 'PaymentDeferred' }); // not an order event: malformed
    const record = sqsRecord(JSON.stringify(bad));
    // (a batch of one that fails fails whole: Powertools throws FullBatchFailureError)
    await expect(handler(sqsEvent(record), lambdaContext())).rejects.toThrow(/All records failed/);
    expect(logger.at('error')).toHaveLength(1);
    expect(traceOf(logger.at('error')[0])).toEqual(expectedTrace(record));
  });

  test('with a fulfilment endpoint, an applied event is one line on its order\u2019s trace', async () => {
    const logger = new FakeLogger();
    const handler = createOrderEventsHandler({
      logger,
      metrics: new FakeMetrics(),
      persistenceStore: new InMemoryPersistenceLayer(),
      expiresAfterSeconds: 86_400,
      apply: async (event) => ({
        eventId: event.eventId,
        type: event.type,
        orderId: event.orderId,
        via: 'fulfilment',
      }),
    });
    const record = sqsRecord(JSON.stringify(orderEvent()));
    await handler(sqsEvent(record), lambdaContext());
    expect(logger.entries).toEqual([
      {
        level: 'info',
        message: 'order event applied',
        extra: { ...expectedTrace(record), type: 'OrderConfirmed', via: 'fulfilment' },
      },
    ]);
  });

  test('a request id that is not a bounded string is dropped, not a reason to refuse the event', async () => {
    const g = gate();
    g.open();
    const { handler, logger } = setup(g);
    const record = sqsRecord(JSON.stringify(orderEvent({ requestId: 'r'.repeat(500) })));
    const result = await handler(sqsEvent(record), lambdaContext());
    expect(result).toEqual({ batchItemFailures: [] });
    expect(logger.at('info')).toHaveLength(1);
    expect(logger.at('info')[0].extra).not.toHaveProperty('requestId');
  });
});

describe('payment-retry worker', () => {
  const TOKEN = 'tok_trace_secret';
  const deferred = (overrides: Record<string, unknown> = {}) =>
    orderEvent({
      type: 'PaymentDeferred',
      amountCents: 1_500,
      currency: 'EUR',
      paymentToken: TOKEN,
      cause: 'circuit-open',
      ...overrides,
    });

  test("records of one batch run at once; each outcome line carries its own record's keys", async () => {
    // GIVEN two deferred orders settled at the same time (the second one deferred by the
    // stuck-order sweep: no request id)
    const g = gate();
    const logger = new FakeLogger();
    const handler = createPaymentRetryHandler({
      logger,
      metrics: new FakeMetrics(),
      persistenceStore: new InMemoryPersistenceLayer(),
      expiresAfterSeconds: 86_400,
      retry: async (orderId) => {
        await g.wait();
        return { kind: 'confirmed', orderId, chargeId: `ch_${orderId}` };
      },
    });
    const records = [deferred(), deferred({ requestId: undefined, cause: 'stuck-in-progress' })].map((m) =>
      sqsRecord(JSON.stringify(m)),
    );
    // WHEN the batch is handled
    const pending = handler(sqsEvent(...records), lambdaContext());
    setTimeout(g.open, 20);
    expect(await pending).toEqual({ batchItemFailures: [] });
    // THEN each record's line names it, and only it; no line carries the payment token
    expect(logger.entries).toHaveLength(2);
    for (const record of records) {
      const mine = logger.entries.filter((e) => e.extra.messageId === record.messageId);
      expect(mine.map((e) => e.message)).toEqual(['deferred order confirmed']);
      expect(traceOf(mine[0])).toEqual(expectedTrace(record));
    }
    expect(JSON.stringify(logger.entries)).not.toContain(TOKEN);
  });
});
