import { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { Pool } from 'pg';
import { inTransaction } from './checkout';
import { Metrics } from './metrics';

export type Destination = 'order-events' | 'payment-retry';

export interface OutboxRelayOptions {
  readonly pool: Pool;
  readonly sqs: SQSClient;
  readonly queueUrls: Readonly<Record<Destination, string>>;
  readonly batchSize: number;
  readonly metrics: Metrics;
  readonly onError?: (err: unknown) => void;
}

/**
 * Publishes outbox rows to SQS, at least once. Rows are locked with
 * `FOR UPDATE SKIP LOCKED`, so several instances relay in parallel without sending the
 * same row at the same time; a row is marked published only after SQS accepted it, in
 * the transaction that holds its lock. A crash between the send and the commit sends
 * it again: every message carries `eventId` (the outbox id) for consumers to dedupe.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(private readonly options: OutboxRelayOptions) {}

  /** Relays every intervalMs until stopped. */
  start(intervalMs: number): void {
    const tick = async () => {
      if (this.stopped) return;
      await this.publishPending().catch((err) => this.options.onError?.(err));
      if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
    };
    this.timer = setTimeout(tick, intervalMs);
  }

  /** Stops the loop and waits for a relay pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Publishes until nothing is pending (or a pass makes no progress). */
  async publishPending(): Promise<number> {
    let total = 0;
    for (;;) {
      this.running = this.publishBatch();
      const sent = await this.running;
      total += sent;
      if (sent < this.options.batchSize) return total;
    }
  }

  private async publishBatch(): Promise<number> {
    const { pool, sqs, queueUrls, batchSize, metrics } = this.options;
    return inTransaction(pool, async (db) => {
      const { rows } = await db.query<{
        id: string;
        destination: Destination;
        payload: Record<string, unknown>;
      }>(
        `SELECT id, destination, payload FROM outbox
          WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batchSize],
      );
      if (rows.length === 0) return 0;
      const published: string[] = [];
      for (const destination of Object.keys(queueUrls) as Destination[]) {
        const batch = rows.filter((r) => r.destination === destination);
        if (batch.length === 0) continue;
        try {
          const result = await sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrls[destination],
              Entries: batch.map((r) => ({
                Id: r.id,
                MessageBody: JSON.stringify({ eventId: `outbox-${r.id}`, ...r.payload }),
              })),
            }),
          );
          for (const ok of result.Successful ?? []) if (ok.Id) published.push(ok.Id);
          if (result.Failed?.length) metrics.increment('OutboxPublishFailures', result.Failed.length);
        } catch (err) {
          metrics.increment('OutboxPublishFailures', batch.length);
          this.options.onError?.(err);
        }
      }
      if (published.length > 0) {
        await db.query('UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])', [published]);
        metrics.increment('OutboxPublished', published.length);
      }
      return published.length;
    });
  }
}
