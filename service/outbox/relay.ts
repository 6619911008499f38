import { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { Pool } from 'pg';
import { execute, statement } from '../db/statement';
import { inTransaction } from '../db/transaction';
import { Metrics } from '../metrics';
import { OutboxDestination } from './enqueue';
import { SendFailure, classifyEntryFailure, classifySendError } from './sqs-failures';

/**
 * Where the relay reports what an operator must see, and (at info) each message SQS
 * accepted: the outbox step of an order's trace (docs/observability.md, "Tracing an order").
 */
export interface RelayLogger {
  /** Without it, nothing is logged for messages sent (the other lines still are). */
  info?(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface OutboxRelayOptions {
  readonly pool: Pool;
  readonly sqs: SQSClient;
  readonly queueUrls: Readonly<Record<OutboxDestination, string>>;
  /** Rows per SendMessageBatch (SQS takes at most 10). */
  readonly batchSize: number;
  readonly metrics: Metrics;
  /** Bound on one SendMessageBatch call, the SDK's own retry included (an AbortSignal per send). */
  readonly sendTimeoutMs: number;
  /**
   * Longest pause of a destination whose sends keep failing; the pause doubles from the
   * relay interval up to this.
   *
   * @default 30_000
   */
  readonly maxBackoffMs?: number;
  /** @default no logging */
  readonly logger?: RelayLogger;
}

/** The configuration variable that names each destination's queue, for log messages. */
const QUEUE_URL_VARIABLE: Record<OutboxDestination, string> = {
  'order-events': 'ORDER_EVENTS_QUEUE_URL',
  'payment-retry': 'PAYMENT_RETRY_QUEUE_URL',
};

interface OutboxRow {
  readonly id: string;
  readonly payload: Record<string, unknown>;
  readonly created_at: Date;
}

/**
 * The id consumers dedupe on, in every message's body: `<orderId>/<type>`, the event
 * itself rather than the row that carries it.
 *
 * Each event type is a transition an order makes at most once, fenced on its status
 * (confirmed, declined or deferred from `PAYMENT_IN_PROGRESS`; confirmed or declined by
 * the payment-retry worker from `PENDING_PAYMENT`; cancelled by the inventory
 * reconciler), so the id is the same in every copy of a row, and also when the same event
 * is written again after a point-in-time restore or a regional failover lost the row
 * that first carried it (the retried checkout gets the same order id, from its key, and
 * the gateway's same charge): the consumers drop it as the duplicate it is. The row's
 * sequence number did neither: after such a recovery the sequence handed out ids already
 * published, so new events arrived under ids the order-events worker had applied to
 * other orders (refused, to its DLQ), and a re-written event got a new id (applied twice).
 *
 * A payload without a string `orderId` and `type` (no producer writes one) keeps the
 * row's id, `outbox-<id>`.
 */
export function eventIdOf(row: { readonly id: string; readonly payload: Record<string, unknown> }): string {
  const { orderId, type } = row.payload;
  return typeof orderId === 'string' && orderId !== '' && typeof type === 'string' && type !== ''
    ? `${orderId}/${type}`
    : `outbox-${row.id}`;
}

/**
 * The fields that put a row's log lines on its order's trace: `eventId`, `orderId` (every
 * payload has one) and `requestId` when the message carries the request that produced it.
 * Never throws: it is logging, on the send path.
 */
function traceOf(
  rows: readonly OutboxRow[],
  id: string,
): { eventId: string; orderId: unknown; requestId: unknown } {
  const row = rows.find((r) => r.id === id) ?? { id, payload: {} as Record<string, unknown> };
  return { eventId: eventIdOf(row), orderId: row.payload.orderId, requestId: row.payload.requestId };
}

/** What one send did with each row: published, parked (with why), or left pending. */
interface SendOutcome {
  readonly published: string[];
  readonly parked: { id: string; reason: string }[];
  /** Ids of the rows left pending, with the failure that left the last of them. */
  readonly pending: string[];
  readonly failure?: SendFailure;
}

/** One batch: how many rows were selected, and what became of them. */
interface BatchResult extends SendOutcome {
  readonly selected: number;
}

/** Per destination: its loop timer, the pass it is running, its failure streak. */
interface Lane {
  readonly destination: OutboxDestination;
  timer?: NodeJS.Timeout;
  pass?: Promise<void>;
  failures: number;
  /** When the oldest row still pending after the last batch was written (for the age gauge). */
  oldestPendingAt?: number;
}

/** A destination's oldest pending rows, locked; rows another relay holds are skipped. */
const SELECT_PENDING = statement(
  'outbox-select-pending',
  `SELECT id, payload, created_at FROM outbox
    WHERE destination = $1 AND published_at IS NULL AND parked_at IS NULL
    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
);

/** One statement for both: published rows get published_at, parked ones their reason. */
const MARK_SENT = statement(
  'outbox-mark-sent',
  `UPDATE outbox o
      SET published_at = CASE WHEN d.reason IS NULL THEN now() END,
          parked_at = CASE WHEN d.reason IS NOT NULL THEN now() END,
          park_reason = d.reason
     FROM unnest($1::bigint[], $2::text[]) AS d(id, reason)
    WHERE o.id = d.id`,
);

/**
 * Creates the SQS client the relay sends with. The SDK's default is no timeout at all (a
 * hung connection waits for the kernel, minutes): here connecting takes at most 1 s,
 * each HTTP attempt at most half the send timeout, and the SDK retries once; the
 * AbortSignal the relay hands every send bounds the whole call.
 */
export function createSqsClient(options: {
  region: string;
  timeoutMs: number;
  endpoint?: string;
}): SQSClient {
  return new SQSClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    maxAttempts: 2,
    requestHandler: {
      connectionTimeout: Math.min(1_000, options.timeoutMs),
      requestTimeout: Math.ceil(options.timeoutMs / 2),
      throwOnRequestTimeout: true,
    },
  });
}

/**
 * Publishes outbox rows to SQS, at least once, each destination on its own.
 *
 * Each destination (queue) has its own loop, its own query (its oldest pending rows) and
 * its own backoff, so a queue that hangs, refuses or is misconfigured delays only its own
 * messages. Rows are locked with `FOR UPDATE SKIP LOCKED`, so several processes and
 * instances relay in parallel without sending the same row at the same time; a row is
 * marked published only after SQS accepted it, in the transaction that holds its lock.
 * A crash between the send and the commit sends it again: every message carries
 * `eventId` (`<orderId>/<type>`, {@link eventIdOf}) for consumers to dedupe.
 *
 * A message SQS refuses for good is parked (`parked_at`, `park_reason`) and counted as
 * `OutboxMessagesParked`, never retried by the relay; see {@link classifySendError}
 * for what counts as refused for good.
 */
export class OutboxRelay {
  private readonly lanes: Lane[];
  private readonly maxBackoffMs: number;
  private intervalMs = 200;
  private stopped = false;
  /** Aborts the loops' sends in progress when stop() reaches its deadline. */
  private readonly halt = new AbortController();

  constructor(private readonly options: OutboxRelayOptions) {
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.lanes = (Object.keys(options.queueUrls) as OutboxDestination[]).map((destination) => ({
      destination,
      failures: 0,
    }));
  }

  /** Relays every intervalMs per destination (longer while that destination fails) until stopped. */
  start(intervalMs: number): void {
    this.intervalMs = intervalMs;
    for (const lane of this.lanes) this.schedule(lane, intervalMs);
  }

  /**
   * Stops the loops and waits for the passes in progress; at `deadline` (epoch ms) their
   * sends are aborted (the rows stay pending).
   */
  async stop(deadline = Infinity): Promise<void> {
    this.stopped = true;
    for (const lane of this.lanes) clearTimeout(lane.timer);
    const passes = Promise.all(this.lanes.map((lane) => lane.pass));
    if (deadline === Infinity) return void (await passes);
    const abortAt = setTimeout(() => this.halt.abort(), Math.max(0, deadline - Date.now()));
    try {
      await passes;
    } finally {
      clearTimeout(abortAt);
    }
  }

  /**
   * Publishes every destination's pending rows, destinations in parallel, until each is
   * drained, fails, or `deadline` (epoch ms) comes. Used for the final flush at shutdown
   * and by tests.
   *
   * @returns the number of rows published
   */
  async publishPending(options: { deadline?: number } = {}): Promise<number> {
    const deadline = options.deadline ?? Infinity;
    const counts = await Promise.all(
      this.lanes.map((lane) => this.drain(lane, deadline, () => Date.now() < deadline)),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Gauges for the metrics line: the age of the oldest row a destination could not send yet. */
  gauges(now = Date.now()): { OutboxOldestPendingSeconds: number } {
    const oldest = Math.min(...this.lanes.map((l) => l.oldestPendingAt ?? now));
    return { OutboxOldestPendingSeconds: Math.max(0, Math.round((now - oldest) / 1_000)) };
  }

  private schedule(lane: Lane, delayMs: number): void {
    if (this.stopped) return;
    lane.timer = setTimeout(() => {
      lane.pass = this.drain(lane, Infinity, () => !this.stopped, this.halt.signal).then(
        () => this.schedule(lane, this.delayAfter(lane)),
        () => this.schedule(lane, this.delayAfter(lane)),
      );
    }, delayMs);
  }

  /** The interval while healthy; after failures it doubles up to maxBackoffMs, with jitter. */
  private delayAfter(lane: Lane): number {
    if (lane.failures === 0) return this.intervalMs;
    const ceiling = Math.min(this.maxBackoffMs, this.intervalMs * 2 ** Math.min(lane.failures, 20));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** Batches for one destination until it is drained, a batch fails, or `more()` says stop. */
  private async drain(
    lane: Lane,
    deadline: number,
    more: () => boolean,
    halt?: AbortSignal,
  ): Promise<number> {
    let total = 0;
    while (more()) {
      let result: BatchResult;
      try {
        result = await this.publishBatch(lane, deadline, halt);
      } catch (err) {
        // The database, not SQS: the transaction rolled back, the rows stay pending.
        lane.failures++;
        this.options.logger?.warn(
          { err, destination: lane.destination },
          'outbox relay pass failed; rows stay pending',
        );
        return total;
      }
      total += result.published.length;
      if (result.failure) {
        lane.failures++;
        return total;
      }
      lane.failures = 0;
      if (result.selected < this.options.batchSize) return total;
    }
    return total;
  }

  private async publishBatch(lane: Lane, deadline: number, halt?: AbortSignal): Promise<BatchResult> {
    const { pool, batchSize, metrics } = this.options;
    if (deadline - Date.now() <= 0) return { selected: 0, published: [], parked: [], pending: [] };
    // No retry on a conflict here: the transaction sends to SQS, and the next pass retries.
    return inTransaction(
      pool,
      async (db) => {
        const { rows } = await execute<OutboxRow>(db, SELECT_PENDING, [lane.destination, batchSize]);
        if (rows.length === 0) {
          lane.oldestPendingAt = undefined;
          return { selected: 0, published: [], parked: [], pending: [] };
        }
        const timeoutMs = Math.min(this.options.sendTimeoutMs, deadline - Date.now());
        const timeout = AbortSignal.timeout(Math.max(1, timeoutMs));
        const signal = halt ? AbortSignal.any([timeout, halt]) : timeout;
        const outcome = await this.send(lane.destination, rows, signal);
        if (outcome.published.length > 0 || outcome.parked.length > 0) {
          const done = [...outcome.published.map((id) => ({ id, reason: null })), ...outcome.parked];
          await execute(db, MARK_SENT, [done.map((d) => d.id), done.map((d) => d.reason)]);
        }
        const settled = new Set([...outcome.published, ...outcome.parked.map((p) => p.id)]);
        // After a full batch more rows wait, about as old as its last one.
        const oldestLeft =
          rows.find((r) => !settled.has(r.id)) ?? (rows.length === batchSize ? rows.at(-1) : undefined);
        lane.oldestPendingAt = oldestLeft?.created_at.getTime();
        if (outcome.published.length > 0) metrics.increment('OutboxPublished', outcome.published.length);
        if (outcome.pending.length > 0) metrics.increment('OutboxPublishFailures', outcome.pending.length);
        if (outcome.parked.length > 0) {
          metrics.increment('OutboxMessagesParked', outcome.parked.length);
          for (const p of outcome.parked) {
            this.options.logger?.error(
              {
                destination: lane.destination,
                outboxId: p.id,
                ...traceOf(rows, p.id),
                reason: p.reason,
              },
              'outbox message parked: SQS refuses it for good; see "Parked outbox messages" in docs/checkout-service.md',
            );
          }
        }
        if (outcome.failure) this.reportFailure(lane.destination, outcome.failure, rows, outcome.pending);
        return { selected: rows.length, ...outcome };
      },
      { attempts: 1 },
    );
  }

  /**
   * Sends rows as one batch. When SQS refuses the whole batch for what one of its messages
   * carries, the rows are sent one by one, so that only the culprit is parked.
   */
  private async send(
    destination: OutboxDestination,
    rows: OutboxRow[],
    signal: AbortSignal,
  ): Promise<SendOutcome> {
    try {
      const result = await this.options.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: this.options.queueUrls[destination],
          Entries: rows.map((r) => ({
            Id: r.id,
            MessageBody: JSON.stringify({ eventId: eventIdOf(r), ...r.payload }),
          })),
        }),
        { abortSignal: signal },
      );
      const published: string[] = [];
      for (const ok of result.Successful ?? []) {
        if (!ok.Id) continue;
        published.push(ok.Id);
        this.logSent(destination, rows, ok.Id, ok.MessageId);
      }
      const parked: { id: string; reason: string }[] = [];
      const pending: string[] = [];
      let failure: SendFailure | undefined;
      for (const entry of result.Failed ?? []) {
        const classified = classifyEntryFailure(entry);
        if (classified.kind === 'message' && entry.Id)
          parked.push({ id: entry.Id, reason: classified.reason });
        else {
          pending.push(entry.Id ?? ''); // SQS names every entry; counted even if it did not
          failure = classified;
        }
      }
      return { published, parked, pending, failure };
    } catch (err) {
      const failure = classifySendError(err);
      if (failure.kind !== 'message')
        return { published: [], parked: [], pending: rows.map((r) => r.id), failure };
      if (rows.length === 1)
        return { published: [], parked: [{ id: rows[0].id, reason: failure.reason }], pending: [] };
      const outcomes: SendOutcome[] = [];
      for (const row of rows) outcomes.push(await this.send(destination, [row], signal));
      return {
        published: outcomes.flatMap((o) => o.published),
        parked: outcomes.flatMap((o) => o.parked),
        pending: outcomes.flatMap((o) => o.pending),
        failure: outcomes.find((o) => o.failure)?.failure,
      };
    }
  }

  /**
   * One info line per message SQS accepted, on its order's trace, with the SQS message
   * id the worker's lines carry. One line per order at info: about 2 us of CPU each, the
   * price of finding the outbox step of any order (docs/observability.md).
   */
  private logSent(
    destination: OutboxDestination,
    rows: readonly OutboxRow[],
    id: string,
    messageId: string | undefined,
  ): void {
    this.options.logger?.info?.({ destination, ...traceOf(rows, id), messageId }, 'outbox message sent');
  }

  /**
   * A send that left rows pending: one line for the destination (what an operator must
   * fix), then one warning per row left pending, on its order's trace (at most a batch per
   * pass, and passes back off while the destination fails).
   */
  private reportFailure(
    destination: OutboxDestination,
    failure: SendFailure,
    rows: readonly OutboxRow[],
    pending: readonly string[],
  ): void {
    const fields = {
      destination,
      queueUrl: this.options.queueUrls[destination],
      reason: failure.reason,
      rows: pending.length,
    };
    if (failure.kind === 'destination') {
      this.options.logger?.error(
        fields,
        `outbox: SQS refuses the ${destination} queue itself; check ${QUEUE_URL_VARIABLE[destination]} and the ` +
          'instance role; its rows stay pending and go out once it is fixed',
      );
    } else {
      this.options.logger?.warn(fields, `outbox: sending to ${destination} failed; its rows stay pending`);
    }
    for (const id of pending) {
      this.options.logger?.warn(
        { destination, ...traceOf(rows, id), reason: failure.reason },
        'outbox message not sent; it stays pending',
      );
    }
  }
}
