import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { MalformedMessageError, isTransient } from './errors';
import { addRecordKeys, inRecordScope, recordScopedLogger, traceKeysOfBody } from './record-log';

/** The logger calls a worker makes (Powertools' Logger; a fake in tests). */
export type WorkerLogger = Pick<Logger, 'info' | 'warn' | 'error' | 'addContext'>;
/** The metric calls a worker makes (Powertools' Metrics, as EMF; a fake in tests). */
export interface WorkerMetrics {
  addMetric(name: string, unit: Parameters<Metrics['addMetric']>[1], value: number): unknown;
  publishStoredMetrics(): unknown;
}

/** What every SQS message of an idempotent worker carries, for its logs. */
export interface BatchMessage {
  readonly orderId: string;
  readonly eventId?: string;
  /** The checkout request that produced the message (absent from older messages). */
  readonly requestId?: string;
}

/** One worker's part of {@link createIdempotentSqsBatchHandler}. */
export interface IdempotentSqsBatchOptions<M extends BatchMessage, R> {
  readonly logger: WorkerLogger;
  readonly metrics: WorkerMetrics;
  /** Where idempotency records live: Powertools' DynamoDB layer on the idempotency table. */
  readonly persistenceStore: BasePersistenceLayer;
  /**
   * How long a completed record keeps a duplicate out. Longer than the queue's retention
   * plus a redrive from its DLQ (ResilientQueue.idempotencyLifetime).
   */
  readonly expiresAfterSeconds: number;
  /** Prefix of the worker's idempotency keys: fixed, not the function name (see each worker's IDEMPOTENCY_KEY_PREFIX). */
  readonly keyPrefix: string;
  /** JMESPath of the idempotency key in the parsed message. */
  readonly eventKeyJmesPath: string;
  /** JMESPath of the fields a second copy with the same key must repeat (else it is refused). */
  readonly payloadValidationJmesPath: string;
  /** Parses one record's body; throws MalformedMessageError for a message that can never be processed. */
  readonly parse: (messageId: string, body: string) => M;
  /**
   * The work done at most once per key (metrics and logs of success included); its result
   * is stored. It runs in the record's log scope: lines written through a
   * `recordScopedLogger` (./record-log.ts) carry the record's keys.
   */
  readonly apply: (message: M) => Promise<R>;
  /** Called with a failure of `apply` (or of the idempotency layer) before it is logged, to count it. */
  readonly countFailure?: (err: unknown) => void;
  /** What the logs say of a malformed message, a failure that is retried, and one that is not. */
  readonly logMessages: {
    readonly malformed: string;
    readonly retried: string;
    readonly refused: string;
  };
}

/**
 * Powertools' documented batch + idempotency pattern, shared by the SQS workers:
 * `processPartialResponse` runs the record handler for every record and reports the
 * failed ones as batch item failures (only those are retried); the record handler is
 * made idempotent with `makeIdempotent` over the parsed message (argument 1), and
 * `registerLambdaContext` bounds an in-progress record by the invocation's remaining
 * time, so a copy whose function died mid-way is retried once that time has passed.
 *
 * - A malformed message is logged with its messageId, counted (`MalformedMessages`), and
 *   fails on every receive until the queue's maxReceiveCount moves it to the DLQ.
 * - A failure of `apply` is logged as a warning when {@link isTransient} (retried), else
 *   as an error (it will reach the DLQ), and fails its record either way.
 * - Stored metrics are published after every batch, whatever happened.
 * - Every line written while a record is handled carries its `messageId`, and once its
 *   body is parsed its `orderId`, `eventId` and `requestId` (./record-log.ts: records run
 *   in parallel, so the keys are per record, not Powertools' `appendKeys`). A malformed
 *   message's line carries those it names, read best effort.
 */
export function createIdempotentSqsBatchHandler<M extends BatchMessage, R>(
  options: IdempotentSqsBatchOptions<M, R>,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const { metrics, logMessages } = options;
  const logger = recordScopedLogger(options.logger);
  const config = new IdempotencyConfig({
    eventKeyJmesPath: options.eventKeyJmesPath,
    payloadValidationJmesPath: options.payloadValidationJmesPath,
    throwOnNoIdempotencyKey: true,
    expiresAfterSeconds: options.expiresAfterSeconds,
  });
  const processor = new BatchProcessor(EventType.SQS);

  // The record handler proper; the idempotency payload is the validated message (argument 1).
  // Typed as BatchMessage, not M: Powertools' options type is conditional on the arguments'
  // types and stays unresolved over a type parameter. Only recordHandler calls it, with an M.
  const applyOnce = makeIdempotent(
    async (_record: SQSRecord, message: BatchMessage): Promise<R> => options.apply(message as M),
    {
      persistenceStore: options.persistenceStore,
      config,
      keyPrefix: options.keyPrefix,
      dataIndexArgument: 1,
    },
  );

  const handleRecord = async (record: SQSRecord): Promise<R> => {
    const receiveCount = Number(record.attributes.ApproximateReceiveCount);
    let message: M;
    try {
      message = options.parse(record.messageId, record.body);
    } catch (err) {
      addRecordKeys(traceKeysOfBody(record.body));
      const problems = err instanceof MalformedMessageError ? err.problems : [String(err)];
      logger.error(logMessages.malformed, { messageId: record.messageId, receiveCount, problems });
      metrics.addMetric('MalformedMessages', MetricUnit.Count, 1);
      throw err;
    }
    addRecordKeys({ orderId: message.orderId, eventId: message.eventId, requestId: message.requestId });
    try {
      return await applyOnce(record, message);
    } catch (err) {
      options.countFailure?.(err);
      const detail = {
        messageId: record.messageId,
        eventId: message.eventId,
        orderId: message.orderId,
        receiveCount,
        transient: isTransient(err),
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      };
      if (isTransient(err)) logger.warn(logMessages.retried, detail);
      else logger.error(logMessages.refused, detail);
      throw err;
    }
  };
  // Each record in a log scope of its own (records of a batch run in parallel).
  const recordHandler = (record: SQSRecord): Promise<R> =>
    inRecordScope(record.messageId, () => handleRecord(record));

  return async (event, context) => {
    config.registerLambdaContext(context);
    logger.addContext(context);
    try {
      return await processPartialResponse(event, recordHandler, processor, { context });
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
