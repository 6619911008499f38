/**
 * What the payment-retry worker and its construct (lib/constructs/payment-retry-worker.ts)
 * agree on: the environment, the time one record may take, the metrics. Pure, with a
 * type-only import (erased when compiled), so the construct can use it at synth without
 * pulling in the handler or the service.
 */
import type { PaymentPolicy as ServicePaymentPolicy } from '../../service/payment-client';

/** The key prefix of the worker's idempotency records: fixed, so a rename or the other region finds them. */
export const IDEMPOTENCY_KEY_PREFIX = 'payment-retry';

/** The EMF namespace of the worker's metrics (dimension `service`: `payment-retry`). */
export const PAYMENT_RETRY_METRICS_NAMESPACE = 'ResilientShop/Workers';

/** The worker's service name: Powertools' `service` dimension and log key. */
export const PAYMENT_RETRY_SERVICE = 'payment-retry';

/** Counted once per charge the gateway refused itself (401/403/400: a bad API key); alarmed on any. */
export const GATEWAY_REJECTED_METRIC = 'PaymentRequestsRejected';

/**
 * Records per invocation, and so also the database connections and gateway calls one
 * invocation may hold at once (records of a batch run in parallel, each on its own
 * connection).
 */
export const PAYMENT_RETRY_BATCH_SIZE = 10;

/** The service client's policy settings (service/payment-client.ts), read-only here. */
export type PaymentPolicy = Readonly<ServicePaymentPolicy>;

/**
 * The gateway policy of the worker: the service's client (service/payment-client.ts) with
 * these settings. More patient per attempt than the checkout's 2 s (no customer waits), the
 * same number of retries with full jitter, a breaker that opens after 5 consecutive
 * failures and tries again after 30 s (the breaker lives as long as the container), and a
 * bulkhead of one call per record of a batch, with no queue: a record never waits for
 * another's call.
 */
export const PAYMENT_RETRY_POLICY: PaymentPolicy = {
  PAYMENT_ATTEMPT_TIMEOUT_MS: 5_000,
  PAYMENT_RETRIES: 2,
  PAYMENT_BACKOFF_INITIAL_MS: 200,
  PAYMENT_BACKOFF_MAX_MS: 2_000,
  PAYMENT_BREAKER_THRESHOLD: 5,
  PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: 30_000,
  PAYMENT_MAX_CONCURRENT: PAYMENT_RETRY_BATCH_SIZE,
  PAYMENT_MAX_QUEUED: 0,
};

/** The worker's database limits: one connection per record of a batch. */
export const PAYMENT_RETRY_DATABASE = {
  DB_POOL_SIZE: PAYMENT_RETRY_BATCH_SIZE,
  /** A record waits this long at most for a connection (IAM token signing and TLS included). */
  DB_CONNECT_TIMEOUT_MS: 5_000,
  /** Each statement; the order's row lock waits for another holder this long at most. */
  DB_STATEMENT_TIMEOUT_MS: 5_000,
} as const;

/**
 * How old the gateway's API key, read from Secrets Manager, may get before it is read
 * again (in the background, the held copy still in use): the service's own default
 * (`PAYMENT_API_KEY_REFRESH_MS`). A key the gateway refuses (401/403) is read again at once.
 */
export const API_KEY_REFRESH_MS = 5 * 60_000;

/** The longest a charge may take: every attempt timing out, with the longest backoff between them. */
export function chargeWorstCaseMs(policy: PaymentPolicy = PAYMENT_RETRY_POLICY): number {
  return (
    (policy.PAYMENT_RETRIES + 1) * policy.PAYMENT_ATTEMPT_TIMEOUT_MS +
    policy.PAYMENT_RETRIES * policy.PAYMENT_BACKOFF_MAX_MS
  );
}

/**
 * PostgreSQL's `idle_in_transaction_session_timeout` for the worker's sessions: the
 * transaction holding the order's row lock idles while the gateway answers, so it must
 * outlast the longest charge; a statement's time more covers the settling statement.
 * A container that dies mid-charge leaves its lock for at most this long.
 */
export function idleInTransactionTimeoutMs(): number {
  return chargeWorstCaseMs() + PAYMENT_RETRY_DATABASE.DB_STATEMENT_TIMEOUT_MS;
}

/**
 * The longest one record can take: a connection, the row lock, the charge (the API key's
 * first read happens inside its first attempt, under the attempt's timeout), the settling
 * statement and the commit. Records of a batch run in parallel, so this is also about the
 * longest a batch takes; the function's timeout must exceed it (the construct refuses a
 * shorter one).
 */
export function recordWorstCaseMs(): number {
  const { DB_CONNECT_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS } = PAYMENT_RETRY_DATABASE;
  return DB_CONNECT_TIMEOUT_MS + DB_STATEMENT_TIMEOUT_MS + chargeWorstCaseMs() + 2 * DB_STATEMENT_TIMEOUT_MS;
}
