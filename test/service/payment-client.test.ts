import { FakePaymentGateway } from '../../service/fakes/payment-gateway';
import { PaymentRejectedError } from '../../service/errors';
import { PaymentApiKeyUnavailableError, SecretApiKey } from '../../service/payment-api-key';
import { ChargeRequest, HttpPaymentGateway } from '../../service/payment-client';

/** The payment client against the fake gateway over HTTP: no database. */
describe('HttpPaymentGateway', () => {
  let fake: FakePaymentGateway;
  let url: string;
  beforeAll(async () => {
    fake = new FakePaymentGateway();
    url = await fake.listen();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.set({ mode: 'ok', errorRate: 0, latencyMs: 0 });
    fake.failAfterChargeRate = 0;
    fake.rejectStatus = 0;
    fake.rejectedRequests = 0;
  });

  const client = (overrides: Partial<ConstructorParameters<typeof HttpPaymentGateway>[1]> = {}) =>
    new HttpPaymentGateway(url, {
      PAYMENT_ATTEMPT_TIMEOUT_MS: 200,
      PAYMENT_RETRIES: 2,
      PAYMENT_BACKOFF_INITIAL_MS: 1,
      PAYMENT_BACKOFF_MAX_MS: 5,
      PAYMENT_BREAKER_THRESHOLD: 5,
      PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: 60_000,
      PAYMENT_MAX_CONCURRENT: 10,
      PAYMENT_MAX_QUEUED: 10,
      ...overrides,
    });
  let n = 0;
  const charge = (paymentToken = 'tok_visa'): ChargeRequest => ({
    orderId: `order-${++n}`,
    amountCents: 1_000,
    currency: 'USD',
    paymentToken,
  });

  test('a charge is charged once, with the order id as idempotency key', async () => {
    const request = charge();
    const outcome = await client().charge(request);
    expect(outcome).toEqual({ kind: 'charged', chargeId: expect.stringMatching(/^ch_/) });
    expect(fake.charges.get(request.orderId)).toMatchObject({ amountCents: 1_000, requests: 1 });
  });

  test('a decline (402) is declined, sent once, and leaves the breaker closed', async () => {
    const gateway = client({ PAYMENT_BREAKER_THRESHOLD: 1 });
    const outcome = await gateway.charge(charge('tok_decline'));
    expect(outcome).toEqual({ kind: 'declined', reason: 'card_declined' });
    expect(gateway.breakerState).toBe('closed');
  });

  test('a rejection (401) is rejected, not a decline, and is not retried', async () => {
    fake.rejectStatus = 401;
    const outcome = await client().charge(charge());
    expect(outcome.kind).toBe('rejected');
    const { error } = outcome as { error: PaymentRejectedError };
    expect(error).toBeInstanceOf(PaymentRejectedError);
    expect(error.status).toBe(401);
    expect(error.message).toMatch(/401: Invalid API Key/);
    expect(fake.rejectedRequests).toBe(1);
  });

  test('consecutive rejections open the breaker; then charges are deferred without a request', async () => {
    fake.rejectStatus = 403;
    const gateway = client({ PAYMENT_BREAKER_THRESHOLD: 2 });
    await gateway.charge(charge());
    await gateway.charge(charge());
    expect(gateway.breakerState).toBe('open');
    expect(await gateway.charge(charge())).toEqual({ kind: 'deferred', cause: 'circuit-open' });
    expect(fake.rejectedRequests).toBe(2);
  });

  test('5xx after the charge was taken is retried, with one charge, then deferred when retries run out', async () => {
    fake.failAfterChargeRate = 1;
    const request = charge();
    const outcome = await client().charge(request);
    expect(outcome).toEqual({ kind: 'deferred', cause: 'retries-exhausted' });
    expect(fake.charges.get(request.orderId)?.requests).toBe(3); // PAYMENT_RETRIES 2 + the first
  });

  test('a hung gateway is abandoned at the attempt timeout', async () => {
    fake.set({ mode: 'hang' });
    const started = Date.now();
    const outcome = await client({ PAYMENT_RETRIES: 0, PAYMENT_ATTEMPT_TIMEOUT_MS: 100 }).charge(charge());
    expect(outcome).toEqual({ kind: 'deferred', cause: 'retries-exhausted' });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  test('a full bulkhead defers without a request and without touching the breaker', async () => {
    fake.set({ latencyMs: 100 });
    const gateway = client({
      PAYMENT_MAX_CONCURRENT: 1,
      PAYMENT_MAX_QUEUED: 0,
      PAYMENT_BREAKER_THRESHOLD: 1,
      PAYMENT_ATTEMPT_TIMEOUT_MS: 2_000,
    });
    const [first, second] = await Promise.all([gateway.charge(charge()), gateway.charge(charge())]);
    expect(first.kind).toBe('charged');
    expect(second).toEqual({ kind: 'deferred', cause: 'bulkhead-full' });
    expect(gateway.breakerState).toBe('closed');
  });
});

/** The API key on every call, and a rotated key picked up after one refusal. */
describe('HttpPaymentGateway with an API key', () => {
  let fake: FakePaymentGateway;
  let url: string;
  beforeAll(async () => {
    fake = new FakePaymentGateway({ apiKey: 'sk_live_1' });
    url = await fake.listen();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.apiKey = 'sk_live_1';
    fake.unauthorizedRequests = 0;
    fake.lastAuthorization = undefined;
  });

  const policy = {
    PAYMENT_ATTEMPT_TIMEOUT_MS: 500,
    PAYMENT_RETRIES: 2,
    PAYMENT_BACKOFF_INITIAL_MS: 1,
    PAYMENT_BACKOFF_MAX_MS: 5,
    PAYMENT_BREAKER_THRESHOLD: 5,
    PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: 60_000,
    PAYMENT_MAX_CONCURRENT: 10,
    PAYMENT_MAX_QUEUED: 10,
  };
  let n = 0;
  const charge = (): ChargeRequest => ({
    orderId: `keyed-order-${++n}`,
    amountCents: 1_000,
    currency: 'USD',
    paymentToken: 'tok_visa',
  });
  /** A key source over an in-memory secret, read at once (no interval) on a refusal. */
  async function secretSource(initial: string) {
    const secret = { value: initial, reads: 0 };
    const source = new SecretApiKey({
      secretId: 'gateway-key',
      refreshIntervalMs: 3_600_000,
      minRereadIntervalMs: 0,
      read: async () => {
        secret.reads++;
        return secret.value;
      },
    });
    await source.start();
    return { secret, source };
  }

  test('sends the key as a bearer token on every charge', async () => {
    const outcome = await new HttpPaymentGateway(url, { ...policy, apiKey: 'sk_live_1' }).charge(charge());
    expect(outcome.kind).toBe('charged');
    expect(fake.lastAuthorization).toBe('Bearer sk_live_1');
  });

  test('the fake refuses a charge without the key: 401, rejected, not retried, no charge', async () => {
    const request = charge();
    const outcome = await new HttpPaymentGateway(url, policy).charge(request);
    expect(outcome).toMatchObject({ kind: 'rejected', error: { status: 401 } });
    expect(fake.unauthorizedRequests).toBe(1);
    expect(fake.charges.has(request.orderId)).toBe(false);
  });

  test('a rotated key is read again after one 401, and the same charge goes through once', async () => {
    // GIVEN a client holding key 1, then the gateway and the secret both moving to key 2
    const { secret, source } = await secretSource('sk_live_1');
    const gateway = new HttpPaymentGateway(url, { ...policy, PAYMENT_BREAKER_THRESHOLD: 1, apiKey: source });
    expect((await gateway.charge(charge())).kind).toBe('charged');
    fake.apiKey = 'sk_live_2';
    secret.value = 'sk_live_2';
    // WHEN the next charge is sent with key 1
    const request = charge();
    const outcome = await gateway.charge(request);
    // THEN one 401, one read, the charge taken once with key 2, and the breaker (threshold 1) closed
    expect(outcome.kind).toBe('charged');
    expect(fake.unauthorizedRequests).toBe(1);
    expect(secret.reads).toBe(2);
    expect(fake.lastAuthorization).toBe('Bearer sk_live_2');
    expect(fake.charges.get(request.orderId)?.requests).toBe(1);
    expect(gateway.breakerState).toBe('closed');
  });

  test('a 401 after the key was read again is a rejection (misconfiguration): counted by the breaker', async () => {
    // GIVEN the gateway on a key the secret does not hold
    const { secret, source } = await secretSource('sk_live_1');
    fake.apiKey = 'sk_live_other';
    const gateway = new HttpPaymentGateway(url, { ...policy, PAYMENT_BREAKER_THRESHOLD: 1, apiKey: source });
    // WHEN a charge is sent
    const outcome = await gateway.charge(charge());
    // THEN it was sent once, the key read once more (same value), and it stands as a rejection
    expect(outcome).toMatchObject({ kind: 'rejected', error: { status: 401 } });
    expect(fake.unauthorizedRequests).toBe(1);
    expect(secret.reads).toBe(2);
    expect(gateway.breakerState).toBe('open');
  });

  test('a 403 is handled as a 401: the key is read again', async () => {
    const { secret, source } = await secretSource('sk_live_1');
    fake.rejectStatus = 403;
    try {
      const outcome = await new HttpPaymentGateway(url, { ...policy, apiKey: source }).charge(charge());
      expect(outcome).toMatchObject({ kind: 'rejected', error: { status: 403 } });
      expect(secret.reads).toBe(2);
    } finally {
      fake.rejectStatus = 0;
    }
  });

  test('a key that cannot be read is a transient failure: retried, then deferred', async () => {
    const gateway = new HttpPaymentGateway(url, {
      ...policy,
      apiKey: {
        current: () => Promise.reject(new PaymentApiKeyUnavailableError('Secrets Manager unreachable')),
        refreshAfterRejection: () => Promise.resolve(undefined),
      },
    });
    expect(await gateway.charge(charge())).toEqual({ kind: 'deferred', cause: 'retries-exhausted' });
    expect(fake.lastAuthorization).toBeUndefined();
  });
});
