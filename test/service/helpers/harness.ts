import pino from 'pino';
import { ServiceConfig, loadServiceConfig } from '../../../service/config';
import { FakePaymentGateway } from '../../../service/fakes/payment-gateway';
import { FakeRecommendations } from '../../../service/fakes/recommendations';
import { RunningService, startService } from '../../../service/server';
import { TestDatabase } from './database';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef0123456789';

/** Environment for a service under test; queue URLs point nowhere unless given. */
export function serviceEnv(
  db: TestDatabase,
  payment: string,
  recommendations: string,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    PAYMENT_URL: payment,
    RECOMMENDATIONS_URL: recommendations,
    ORDER_EVENTS_QUEUE_URL: 'http://127.0.0.1:9/queue/order-events',
    PAYMENT_RETRY_QUEUE_URL: 'http://127.0.0.1:9/queue/payment-retry',
    ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    // Fast enough for tests, same code paths as production.
    PAYMENT_ATTEMPT_TIMEOUT_MS: '300',
    PAYMENT_BACKOFF_INITIAL_MS: '10',
    PAYMENT_BACKOFF_MAX_MS: '50',
    PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: '1000',
    RECOMMENDATIONS_TIMEOUT_MS: '150',
    OUTBOX_INTERVAL_MS: '50',
    METRICS_INTERVAL_MS: '60000',
    DRAIN_TIMEOUT_MS: '5000',
    // Load shedding off in practice: a loaded CI machine (event-loop stalls of a few
    // hundred ms, a burst of concurrent test requests) must not turn a correctness test
    // into a 503. The shedding tests set their own limits.
    MAX_IN_FLIGHT: '100000',
    MAX_EVENT_LOOP_DELAY_MS: '10000',
    MAX_DB_WAITING: '100000',
    MAX_DB_LATENCY_MS: '60000',
    MAX_DB_QUEUE_MS: '60000',
    ...overrides,
  };
}

/** Fakes + a started service on a test database. */
export interface Harness {
  readonly service: RunningService;
  readonly payment: FakePaymentGateway;
  readonly recommendations: FakeRecommendations;
  readonly config: ServiceConfig;
  stop(): Promise<void>;
}

export async function startHarness(
  db: TestDatabase,
  overrides: Record<string, string> = {},
): Promise<Harness> {
  const payment = new FakePaymentGateway();
  const recommendations = new FakeRecommendations();
  const config = loadServiceConfig(
    serviceEnv(db, await payment.listen(), await recommendations.listen(), overrides),
  );
  let service: RunningService;
  try {
    service = await startService(config, pino({ level: 'silent' }));
  } catch (err) {
    // A service that does not start leaves no fake listening behind.
    await payment.close();
    await recommendations.close();
    throw err;
  }
  return {
    service,
    payment,
    recommendations,
    config,
    async stop() {
      await service.shutdown('test finished');
      await payment.close();
      await recommendations.close();
    },
  };
}

/** A tiny HTTP client for the service under test. */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(options.body !== undefined || options.rawBody !== undefined
        ? { 'content-type': 'application/json' }
        : {}),
      ...options.headers,
    },
    body: options.rawBody ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined),
  });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { raw: text };
  }
  return { status: response.status, body, headers: response.headers };
}

let keyCounter = 0;
/** A fresh idempotency key. */
export const newKey = (prefix = 'key') => `${prefix}-${process.pid}-${Date.now()}-${++keyCounter}`;

export function checkoutBody(overrides: Record<string, unknown> = {}) {
  return {
    customerId: 'cust-1',
    items: [{ sku: 'SKU-1', quantity: 1 }],
    paymentToken: 'tok_visa',
    ...overrides,
  };
}

export async function checkout(baseUrl: string, key: string, body: unknown = checkoutBody()) {
  return call(baseUrl, 'POST', '/v1/checkout', { body, headers: { 'idempotency-key': key } });
}

export async function setStock(baseUrl: string, sku: string, available: number, priceCents = 1_000) {
  const res = await call(baseUrl, 'PUT', `/admin/inventory/${sku}`, {
    body: { available, priceCents },
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (res.status !== 200) throw new Error(`setStock failed: ${res.status} ${JSON.stringify(res.body)}`);
}
