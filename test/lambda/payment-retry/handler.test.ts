import { createHash, randomUUID } from 'node:crypto';
import { FullBatchFailureError } from '@aws-lambda-powertools/batch';
import { IdempotencyValidationError } from '@aws-lambda-powertools/idempotency';
import {
  GatewayRejectedError,
  OrderNotFoundError,
  PaymentNotTakenError,
} from '../../../lambda/payment-retry/errors';
import { createPaymentRetryHandler, readPaymentRetryEnv } from '../../../lambda/payment-retry/handler';
import type { RetryOutcome } from '../../../lambda/payment-retry/settle';
import { WorkerConfigError } from '../../../lambda/shared/env';
import { InMemoryPersistenceLayer } from '../../helpers/in-memory-idempotency';
import { FakeLogger, FakeMetrics, lambdaContext, sqsEvent, sqsRecord } from '../../helpers/lambda';

const TOKEN = 'tok_secret_4242';

/** A `PaymentDeferred` message as the checkout's outbox relay publishes it. */
function deferred(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventId: `outbox-${Math.floor(Math.random() * 1e9)}`,
    type: 'PaymentDeferred',
    orderId: randomUUID(),
    customerId: 'customer-1',
    amountCents: 2_500,
    currency: 'EUR',
    paymentToken: TOKEN,
    cause: 'circuit-open',
    ...overrides,
  };
}

/** The handler over fakes; `retry` answers every order as `answer` does (confirmed by default). */
function setup(answer?: (orderId: string) => Promise<RetryOutcome>) {
  const retried: string[] = [];
  const logger = new FakeLogger();
  const metrics = new FakeMetrics();
  const store = new InMemoryPersistenceLayer();
  const handler = createPaymentRetryHandler({
    logger,
    metrics,
    persistenceStore: store,
    expiresAfterSeconds: 22 * 86_400,
    retry: async (orderId) => {
      retried.push(orderId);
      return answer ? answer(orderId) : { kind: 'confirmed', orderId, chargeId: `ch_${orderId}` };
    },
  });
  return { handler, retried, logger, metrics, store };
}

const receivedTwice = { attributes: { ...sqsRecord('').attributes, ApproximateReceiveCount: '2' } };

describe('payment-retry handler (injected fakes)', () => {
  test('charges a deferred order and reports no failure, counting and logging the outcome without the token', async () => {
    // GIVEN one PaymentDeferred message
    const { handler, retried, metrics, logger } = setup();
    const body = deferred();
    // WHEN the batch is handled
    const result = await handler(sqsEvent(sqsRecord(JSON.stringify(body))), lambdaContext());
    // THEN the order was retried once, counted, logged with its event id and cause...
    expect(result).toEqual({ batchItemFailures: [] });
    expect(retried).toEqual([body.orderId]);
    expect(metrics.counts).toEqual({ OrdersConfirmed: 1 });
    expect(metrics.published).toBe(1);
    expect(logger.at('info')[0].extra).toMatchObject({
      kind: 'confirmed',
      orderId: body.orderId,
      eventId: body.eventId,
      deferredBecause: 'circuit-open',
    });
    // ...and the payment token appears in no log line
    expect(JSON.stringify(logger.entries)).not.toContain(TOKEN);
  });

  test.each<[string, RetryOutcome['kind'], string]>([
    ['declined and compensated', 'declined', 'PaymentsDeclined'],
    [
      'found settled already (confirmed, or cancelled by the reconciler)',
      'already-settled',
      'OrdersAlreadySettled',
    ],
  ])('an order %s completes its record and is counted', async (_case, kind, metric) => {
    const { handler, metrics } = setup(async (orderId) =>
      kind === 'declined'
        ? { kind, orderId, reason: 'card_declined' }
        : { kind: 'already-settled', orderId, status: 'CANCELLED' },
    );
    const result = await handler(sqsEvent(sqsRecord(JSON.stringify(deferred()))), lambdaContext());
    expect(result).toEqual({ batchItemFailures: [] });
    expect(metrics.counts).toEqual({ [metric]: 1 });
  });

  test('the same order in a second message (a new messageId) is not retried again, keyed on orderId alone', async () => {
    // GIVEN an order settled once
    const { handler, retried, store } = setup();
    const message = deferred();
    await handler(sqsEvent(sqsRecord(JSON.stringify(message))), lambdaContext());
    // WHEN a copy arrives again (a relay re-send carries the same body; a redrive a new messageId)
    const result = await handler(sqsEvent(sqsRecord(JSON.stringify(message))), lambdaContext());
    // THEN it succeeds without retrying, and one record holds the order under the fixed prefix
    expect(result).toEqual({ batchItemFailures: [] });
    expect(retried).toHaveLength(1);
    const hash = createHash('md5').update(JSON.stringify(message.orderId)).digest('base64');
    expect([...store.records.keys()]).toEqual([`payment-retry#${hash}`]);
    // and the stored result carries no payment token
    expect(JSON.stringify([...store.records.values()].map((r) => r.responseData))).not.toContain(TOKEN);
  });

  test('two copies in one batch retry once; the other fails as in progress, then finds the order settled', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { handler, retried } = setup(async (orderId) => {
      await gate;
      return { kind: 'confirmed', orderId, chargeId: 'ch_1' };
    });
    const body = JSON.stringify(deferred());
    const first = sqsRecord(body);
    const second = sqsRecord(body);
    const pending = handler(sqsEvent(first, second), lambdaContext());
    setTimeout(release, 20);
    const result = await pending;
    expect(retried).toHaveLength(1);
    expect(result.batchItemFailures).toHaveLength(1);
    expect([first.messageId, second.messageId]).toContain(result.batchItemFailures[0].itemIdentifier);
    expect(await handler(sqsEvent(sqsRecord(body)), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(retried).toHaveLength(1);
  });

  test('a payment not taken (breaker open) fails its record alone, transient, and the next delivery retries it', async () => {
    // GIVEN a gateway whose breaker is open for the first attempt only
    let attempts = 0;
    const { handler, retried, logger, metrics } = setup(async (orderId) => {
      if (++attempts === 1) throw new PaymentNotTakenError(orderId, 'circuit-open');
      return { kind: 'confirmed', orderId, chargeId: 'ch_2' };
    });
    const failing = sqsRecord(JSON.stringify(deferred()), receivedTwice);
    const other = sqsRecord(JSON.stringify(deferred()));
    // WHEN the batch is handled
    const result = await handler(sqsEvent(failing, other), lambdaContext());
    // THEN only that record is returned for retry, logged as transient and counted
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: failing.messageId }] });
    expect(metrics.counts).toMatchObject({ PaymentsNotTaken: 1, OrdersConfirmed: 1 });
    const [warning] = logger.at('warn');
    expect(warning.message).toMatch(/will be retried/);
    expect(warning.extra).toMatchObject({ messageId: failing.messageId, receiveCount: 2, transient: true });
    // WHEN SQS delivers it again THEN it is retried (no record was kept for the failure) and settles
    expect(await handler(sqsEvent(sqsRecord(failing.body)), lambdaContext())).toEqual({
      batchItemFailures: [],
    });
    expect(retried.filter((id) => id === JSON.parse(failing.body).orderId)).toHaveLength(2);
  });

  test('the gateway refusing our request is counted as PaymentRequestsRejected and logged as permanent', async () => {
    const { handler, logger, metrics } = setup(async (orderId) => {
      throw new GatewayRejectedError(orderId, 401);
    });
    const record = sqsRecord(JSON.stringify(deferred()));
    await expect(handler(sqsEvent(record), lambdaContext())).rejects.toThrow(FullBatchFailureError);
    expect(metrics.counts).toEqual({ PaymentRequestsRejected: 1 });
    const [error] = logger.at('error');
    expect(error.message).toMatch(/will reach the dead-letter queue/);
    expect(error.extra).toMatchObject({
      transient: false,
      error: expect.stringMatching(/rejected .* with 401/),
    });
  });

  test('an order the database does not hold fails its record as permanent', async () => {
    const { handler, logger } = setup(async (orderId) => {
      throw new OrderNotFoundError(orderId);
    });
    const record = sqsRecord(JSON.stringify(deferred()));
    await expect(handler(sqsEvent(record), lambdaContext())).rejects.toThrow(FullBatchFailureError);
    const [error] = logger.at('error');
    expect(error.message).toMatch(/will reach the dead-letter queue/);
    expect(error.extra).toMatchObject({ messageId: record.messageId, transient: false });
  });

  test.each([
    ['not JSON', `{"orderId": "${randomUUID()}", "paymentToken": "${TOKEN}"`, /body is not JSON/],
    ['another message type', JSON.stringify(deferred({ type: 'OrderConfirmed' })), /type/],
    ['an orderId that is not a UUID', JSON.stringify(deferred({ orderId: '42' })), /orderId/],
    ['no amount', JSON.stringify(deferred({ amountCents: undefined })), /amountCents/],
    ['a currency that is not ISO 4217', JSON.stringify(deferred({ currency: 'euro' })), /currency/],
  ])(
    'a malformed message (%s) fails alone, logged with its messageId and problem, never its body',
    async (_case, body, problem) => {
      const { handler, retried, logger, metrics } = setup();
      const bad = sqsRecord(body, receivedTwice);
      const result = await handler(
        sqsEvent(sqsRecord(JSON.stringify(deferred())), bad, sqsRecord(JSON.stringify(deferred()))),
        lambdaContext(),
      );
      expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: bad.messageId }] });
      expect(retried).toHaveLength(2);
      const [error] = logger.at('error');
      expect(error.message).toMatch(/malformed payment-retry message/);
      expect(error.extra).toMatchObject({ messageId: bad.messageId, receiveCount: 2 });
      expect((error.extra.problems as string[]).join('; ')).toMatch(problem);
      expect(JSON.stringify(logger.entries)).not.toContain(TOKEN);
      expect(metrics.counts.MalformedMessages).toBe(1);
    },
  );

  test('the same orderId with another amount is refused (a producer bug, not a duplicate)', async () => {
    const { handler, retried, logger } = setup();
    const message = deferred();
    await handler(sqsEvent(sqsRecord(JSON.stringify(message))), lambdaContext());
    const other = sqsRecord(JSON.stringify({ ...message, amountCents: 1 }));
    await expect(handler(sqsEvent(other), lambdaContext())).rejects.toThrow(FullBatchFailureError);
    expect(retried).toHaveLength(1);
    expect(logger.at('error')[0].extra.error).toMatch(new RegExp(IdempotencyValidationError.name));
  });
});

describe('readPaymentRetryEnv', () => {
  const base = {
    IDEMPOTENCY_TABLE_NAME: 'shop-idempotency',
    IDEMPOTENCY_EXPIRES_AFTER_SECONDS: '1900800',
    DB_HOST: 'shop-proxy.proxy-abc.us-east-1.rds.amazonaws.com',
    DB_PORT: '5432',
    DB_USER: 'checkout',
    AWS_REGION: 'us-east-1',
  };

  test('the real gateway: its https URL and the secret holding its API key; the database with IAM auth', () => {
    const env = readPaymentRetryEnv({
      ...base,
      PAYMENT_URL: 'https://api.payments.example.com',
      PAYMENT_API_KEY_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:gw-AbCdEf',
    });
    expect(env).toEqual({
      tableName: 'shop-idempotency',
      expiresAfterSeconds: 1_900_800,
      database: {
        mode: 'iam',
        host: base.DB_HOST,
        port: 5432,
        database: 'postgres',
        user: 'checkout',
        region: 'us-east-1',
      },
      payment: {
        mode: 'gateway',
        url: 'https://api.payments.example.com',
        apiKeySecretId: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:gw-AbCdEf',
      },
    });
  });

  test('the sandbox: the fake gateway, no URL and no secret', () => {
    expect(readPaymentRetryEnv({ ...base, PAYMENT_SANDBOX: 'true' }).payment).toEqual({ mode: 'sandbox' });
  });

  test.each([
    [{ PAYMENT_URL: 'https://gw.example.com' }, /PAYMENT_API_KEY_SECRET_ID is required/],
    [{ PAYMENT_API_KEY_SECRET_ID: 'gw' }, /PAYMENT_URL is required/],
    [{ PAYMENT_URL: 'http://gw.example.com', PAYMENT_API_KEY_SECRET_ID: 'gw' }, /must be an https:\/\/ URL/],
    [
      { PAYMENT_SANDBOX: 'true', PAYMENT_URL: 'https://gw.example.com' },
      /unset PAYMENT_URL, or PAYMENT_SANDBOX/,
    ],
    [{ PAYMENT_SANDBOX: 'true', DB_HOST: '' }, /DB_HOST is required/],
  ])('refuses %j at init, naming the variable', (overrides, message) => {
    expect(() => readPaymentRetryEnv({ ...base, ...overrides })).toThrow(WorkerConfigError);
    expect(() => readPaymentRetryEnv({ ...base, ...overrides })).toThrow(message);
  });
});
