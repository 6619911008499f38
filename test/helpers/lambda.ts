import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { IDEMPOTENCY_TABLE_ATTRIBUTES } from '../../lambda/shared/idempotency';

/** A Lambda context with a fixed remaining time (what Powertools idempotency reads). */
export function lambdaContext(remainingMs = 30_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'test-worker',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:111111111111:function:test-worker',
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/test-worker',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** An SQS record as the event source mapping delivers it. */
export function sqsRecord(body: string, overrides: Partial<SQSRecord> = {}): SQSRecord {
  return {
    messageId: randomUUID(),
    receiptHandle: `handle-${randomUUID()}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'AIDATEST',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:111111111111:test-order-events',
    awsRegion: 'us-east-1',
    ...overrides,
  };
}

export function sqsEvent(...records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

/** One line the code under test logged. */
export interface LogEntry {
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly extra: Record<string, unknown>;
}

/** Records what a worker logs (the Powertools Logger methods workers call). */
export class FakeLogger {
  readonly entries: LogEntry[] = [];
  info(message: unknown, ...extra: unknown[]): void {
    this.entries.push({
      level: 'info',
      message: String(message),
      extra: (extra[0] ?? {}) as Record<string, unknown>,
    });
  }
  warn(message: unknown, ...extra: unknown[]): void {
    this.entries.push({
      level: 'warn',
      message: String(message),
      extra: (extra[0] ?? {}) as Record<string, unknown>,
    });
  }
  error(message: unknown, ...extra: unknown[]): void {
    this.entries.push({
      level: 'error',
      message: String(message),
      extra: (extra[0] ?? {}) as Record<string, unknown>,
    });
  }
  addContext(): void {}
  at(level: LogEntry['level']): LogEntry[] {
    return this.entries.filter((e) => e.level === level);
  }
}

/** Sums what a worker counts (the Powertools Metrics methods workers call). */
export class FakeMetrics {
  readonly counts: Record<string, number> = {};
  published = 0;
  addMetric(name: string, _unit: unknown, value: number): void {
    this.counts[name] = (this.counts[name] ?? 0) + value;
  }
  publishStoredMetrics(): void {
    this.published++;
  }
}

/**
 * Creates a Powertools idempotency table with the key schema and TTL attribute of
 * lib/constructs/idempotency-table.ts (on a moto_server, through `dynamo`).
 */
export async function createIdempotencyTable(dynamo: DynamoDBClient, tableName: string): Promise<void> {
  await dynamo.send(
    new CreateTableCommand({
      TableName: tableName,
      KeySchema: [{ AttributeName: IDEMPOTENCY_TABLE_ATTRIBUTES.keyAttr, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: IDEMPOTENCY_TABLE_ATTRIBUTES.keyAttr, AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await dynamo.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: IDEMPOTENCY_TABLE_ATTRIBUTES.expiryAttr, Enabled: true },
    }),
  );
}
