import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { integerEnv, requiredEnv } from '../shared/env';
import { recordScopedLogger } from '../shared/record-log';
import {
  type WorkerLogger,
  type WorkerMetrics,
  createIdempotentSqsBatchHandler,
} from '../shared/idempotent-batch';
import type { AppliedEvent, ApplyEvent } from './fulfilment';
import { type OrderEvent, parseOrderEvent } from './schema';

export type { WorkerLogger, WorkerMetrics };

/**
 * Prefix of this worker's idempotency keys. Fixed, not Powertools' default (the function
 * name): a redeploy that renames the function, or the standby region's function reading
 * the replica of the same global table, must find the records already written.
 */
export const IDEMPOTENCY_KEY_PREFIX = 'order-events';

/** What the handler needs from the outside; `index.ts` builds the real ones once per container. */
export interface OrderEventsDeps {
  readonly logger: WorkerLogger;
  readonly metrics: WorkerMetrics;
  /** Where idempotency records live: Powertools' DynamoDB layer on the idempotency table. */
  readonly persistenceStore: BasePersistenceLayer;
  /** Applies one event (fulfilment request, or a log record). */
  readonly apply: ApplyEvent;
  /**
   * How long an applied event's record keeps a duplicate out. Longer than the queue's
   * retention plus a redrive from its DLQ (ResilientQueue.idempotencyLifetime).
   */
  readonly expiresAfterSeconds: number;
}

/** The environment `index.ts` reads (set by lib/constructs/order-events-worker.ts). */
export interface OrderEventsEnv {
  readonly tableName: string;
  readonly expiresAfterSeconds: number;
  readonly fulfilmentUrl?: string;
  readonly fulfilmentTimeoutMs: number;
}

export function readOrderEventsEnv(env: Readonly<Record<string, string | undefined>>): OrderEventsEnv {
  return {
    tableName: requiredEnv(env, 'IDEMPOTENCY_TABLE_NAME'),
    expiresAfterSeconds: integerEnv(env, 'IDEMPOTENCY_EXPIRES_AFTER_SECONDS', undefined),
    fulfilmentUrl: env.FULFILMENT_URL?.trim() || undefined,
    fulfilmentTimeoutMs: integerEnv(env, 'FULFILMENT_TIMEOUT_MS', 5_000),
  };
}

/**
 * The `order-events` worker: applies each event once, whatever SQS delivers.
 *
 * Powertools' documented batch + idempotency pattern (../shared/idempotent-batch.ts):
 * `processPartialResponse` runs the record handler for every record and reports the
 * failed ones as batch item failures (only those are retried); the record handler is made idempotent with `makeIdempotent`,
 * keyed on the event's `eventId` (`<orderId>/<type>`: the same in every copy the relay
 * sends, in a message redriven from the DLQ, both of which get a new SQS messageId, and
 * in the same event written again after a restore or a failover lost its first row),
 * and `registerLambdaContext` bounds an in-progress record by the invocation's remaining
 * time, so a copy whose function died mid-way is retried once that time has passed.
 *
 * - The same event twice, one after the other: the second finds the completed record and
 *   returns its stored result without applying.
 * - Two copies at once: one applies; the other finds the record in progress, fails as a
 *   batch item failure, and on its retry finds it completed.
 * - The same eventId with another type or order id is refused (payload validation): a
 *   producer bug, not a duplicate.
 * - A malformed message (not JSON, missing or bad fields) is logged with its messageId,
 *   counted (`MalformedMessages`), and fails on every receive until the queue's
 *   maxReceiveCount moves it to the DLQ: never retried forever, never dropped.
 *
 * Every line written while a record is handled carries its `messageId`, `orderId`,
 * `eventId` and the `requestId` of the checkout behind it (../shared/record-log.ts;
 * docs/observability.md, "Tracing an order"); an event the fulfilment endpoint accepted
 * is one `order event applied` line (without an endpoint, the log record that stands for
 * the fulfilment is).
 */
export function createOrderEventsHandler(
  deps: OrderEventsDeps,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const { metrics } = deps;
  const logger = recordScopedLogger(deps.logger);
  return createIdempotentSqsBatchHandler({
    logger,
    metrics,
    persistenceStore: deps.persistenceStore,
    expiresAfterSeconds: deps.expiresAfterSeconds,
    keyPrefix: IDEMPOTENCY_KEY_PREFIX,
    eventKeyJmesPath: 'eventId',
    payloadValidationJmesPath: '[type, orderId]',
    parse: parseOrderEvent,
    apply: async (event: OrderEvent): Promise<AppliedEvent> => {
      const applied = await deps.apply(event);
      metrics.addMetric('EventsApplied', MetricUnit.Count, 1);
      // The order's trace shows the event applied: the fulfilment endpoint's acceptance
      // here (without an endpoint, the log record that stands for it is that line).
      if (applied.via === 'fulfilment')
        logger.info('order event applied', { type: applied.type, via: applied.via });
      return applied;
    },
    logMessages: {
      malformed: 'malformed order event: it fails until it reaches the dead-letter queue',
      retried: 'order event not applied, will be retried',
      refused: 'order event refused, will reach the dead-letter queue',
    },
  });
}
