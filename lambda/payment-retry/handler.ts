import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { IamDatabaseSettings } from '../../service/db/settings';
import { WorkerConfigError, integerEnv, requiredEnv } from '../shared/env';
import { recordScopedLogger } from '../shared/record-log';
import {
  type WorkerLogger,
  type WorkerMetrics,
  createIdempotentSqsBatchHandler,
} from '../shared/idempotent-batch';
import { GATEWAY_REJECTED_METRIC, IDEMPOTENCY_KEY_PREFIX } from './contract';
import { GatewayRejectedError, PaymentNotTakenError } from './errors';
import { parsePaymentUrl } from './gateway';
import { type DeferredPayment, parseDeferredPayment } from './schema';
import type { RetryOutcome } from './settle';

export { IDEMPOTENCY_KEY_PREFIX };
export type { WorkerLogger, WorkerMetrics };

/** What the handler needs from the outside; `index.ts` builds the real ones once per container. */
export interface PaymentRetryDeps {
  readonly logger: WorkerLogger;
  readonly metrics: WorkerMetrics;
  /** Where idempotency records live: Powertools' DynamoDB layer on the idempotency table. */
  readonly persistenceStore: BasePersistenceLayer;
  /** Charges and settles one deferred order (./settle.ts `retryDeferredPayment` over the pool and gateway). */
  readonly retry: (orderId: string) => Promise<RetryOutcome>;
  /**
   * How long a settled order's record keeps a duplicate out. Longer than the queue's
   * retention plus a redrive from its DLQ (ResilientQueue.idempotencyLifetime).
   */
  readonly expiresAfterSeconds: number;
}

/** Where the worker takes payments. */
export type PaymentMode =
  | { readonly mode: 'gateway'; readonly url: string; readonly apiKeySecretId: string }
  /** SANDBOX ONLY: the service's fake gateway, in the container (./gateway.ts `sandboxGateway`). */
  | { readonly mode: 'sandbox' };

/** The environment `index.ts` reads (set by lib/constructs/payment-retry-worker.ts). */
export interface PaymentRetryEnv {
  readonly tableName: string;
  readonly expiresAfterSeconds: number;
  /** Always IAM auth: RDS Proxy in the primary, the cluster itself in the standby. */
  readonly database: IamDatabaseSettings;
  readonly payment: PaymentMode;
}

/**
 * Reads the worker's environment: the idempotency table, the database as the service's
 * variables name it (`DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, and Lambda's `AWS_REGION`),
 * and either `PAYMENT_URL` with `PAYMENT_API_KEY_SECRET_ID` or `PAYMENT_SANDBOX=true`.
 *
 * @throws WorkerConfigError naming the variable and the fix: the function fails at init
 */
export function readPaymentRetryEnv(env: Readonly<Record<string, string | undefined>>): PaymentRetryEnv {
  const sandbox = env.PAYMENT_SANDBOX?.trim() === 'true';
  const url = env.PAYMENT_URL?.trim();
  if (sandbox && url) {
    throw new WorkerConfigError(
      'PAYMENT_SANDBOX=true runs the fake gateway: unset PAYMENT_URL, or PAYMENT_SANDBOX to use the real one',
    );
  }
  const payment: PaymentMode = sandbox
    ? { mode: 'sandbox' }
    : {
        mode: 'gateway',
        url: parsePaymentUrl(requiredEnv(env, 'PAYMENT_URL')),
        apiKeySecretId: requiredEnv(env, 'PAYMENT_API_KEY_SECRET_ID'),
      };
  return {
    tableName: requiredEnv(env, 'IDEMPOTENCY_TABLE_NAME'),
    expiresAfterSeconds: integerEnv(env, 'IDEMPOTENCY_EXPIRES_AFTER_SECONDS', undefined),
    database: {
      mode: 'iam',
      host: requiredEnv(env, 'DB_HOST'),
      port: integerEnv(env, 'DB_PORT', 5432),
      // The cluster was created without a database name: PostgreSQL's `postgres`, as the service.
      database: env.DB_NAME?.trim() || 'postgres',
      user: requiredEnv(env, 'DB_USER'),
      region: requiredEnv(env, 'AWS_REGION'),
    },
    payment,
  };
}

/** The metric each outcome counts. */
const OUTCOME_METRIC: Record<RetryOutcome['kind'], string> = {
  confirmed: 'OrdersConfirmed',
  declined: 'PaymentsDeclined',
  'already-settled': 'OrdersAlreadySettled',
};

/**
 * The `payment-retry` worker: charges each deferred order once, whatever SQS delivers.
 *
 * Powertools' documented batch + idempotency pattern (../shared/idempotent-batch.ts):
 * `processPartialResponse` runs the record handler for every record (in parallel) and
 * reports the failed ones as batch item failures; the record handler is made idempotent
 * with `makeIdempotent`, keyed on the message's `orderId` (one deferral per order: the
 * checkout's fenced record and the stuck-order sweep each defer an order at most once),
 * with payload validation on `[type, amountCents, currency]`; `registerLambdaContext`
 * bounds an in-progress record by the invocation's remaining time.
 *
 * | what happens to the order                           | the record           | metric                              |
 * | --------------------------------------------------- | -------------------- | ----------------------------------- |
 * | charged: CONFIRMED, OrderConfirmed                  | done                 | OrdersConfirmed                     |
 * | declined: released, PAYMENT_DECLINED, event         | done                 | PaymentsDeclined                    |
 * | no longer PENDING_PAYMENT: left alone               | done                 | OrdersAlreadySettled                |
 * | breaker open, 5xx or timeouts: still PENDING_PAYMENT | batch item failure   | PaymentsNotTaken                    |
 * | the gateway refused our request (401/403/400)       | batch item failure   | PaymentRequestsRejected (alarmed)   |
 * | malformed message, unknown order                    | batch item failure   | MalformedMessages / logged as error |
 *
 * Every failure is retried by SQS after the visibility timeout and reaches the DLQ after
 * maxReceiveCount receives; an order whose message dies there keeps its stock until it is
 * redriven or the inventory reconciler releases it. The same order twice (a relay re-send,
 * a redrive): the second copy returns the stored outcome without touching the gateway or
 * the database; two copies at once: one works, the other fails its record (in progress)
 * and finds it completed on its retry. Behind the idempotency record, the database fence
 * and the gateway's idempotency key (the order id) each keep a second charge out on their
 * own (settle.ts).
 *
 * Nothing logged or stored carries the payment token. Every line written while a record
 * is handled carries its `messageId`, `orderId`, `eventId` and the `requestId` of the
 * checkout that deferred it (../shared/record-log.ts; docs/observability.md, "Tracing an
 * order"): give `deps.logger` already scoped (`recordScopedLogger`) to have the lines the
 * gateway client writes through it carry them too.
 */
export function createPaymentRetryHandler(
  deps: PaymentRetryDeps,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const { metrics } = deps;
  const logger = recordScopedLogger(deps.logger);
  return createIdempotentSqsBatchHandler({
    logger,
    metrics,
    persistenceStore: deps.persistenceStore,
    expiresAfterSeconds: deps.expiresAfterSeconds,
    keyPrefix: IDEMPOTENCY_KEY_PREFIX,
    eventKeyJmesPath: 'orderId',
    payloadValidationJmesPath: '[type, amountCents, currency]',
    parse: parseDeferredPayment,
    apply: async (message: DeferredPayment): Promise<RetryOutcome> => {
      const outcome = await deps.retry(message.orderId);
      metrics.addMetric(OUTCOME_METRIC[outcome.kind], MetricUnit.Count, 1);
      logger.info(`deferred order ${outcome.kind}`, {
        ...outcome,
        eventId: message.eventId,
        deferredBecause: message.cause,
      });
      return outcome;
    },
    countFailure: (err) => {
      if (err instanceof PaymentNotTakenError) metrics.addMetric('PaymentsNotTaken', MetricUnit.Count, 1);
      if (err instanceof GatewayRejectedError)
        metrics.addMetric(GATEWAY_REJECTED_METRIC, MetricUnit.Count, 1);
    },
    logMessages: {
      malformed: 'malformed payment-retry message: it fails until it reaches the dead-letter queue',
      retried: 'deferred order not settled, will be retried',
      refused: 'deferred order refused, will reach the dead-letter queue',
    },
  });
}
