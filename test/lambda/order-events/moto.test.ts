/**
 * The order-events worker against real AWS APIs on a moto_server this file starts on
 * 127.0.0.1: Powertools' DynamoDB persistence layer on a table shaped like the
 * idempotency table, and an SQS queue with a redrive policy to a DLQ, whose receive loop
 * the test drives the way Lambda's event source mapping does. Real SDK calls, no mocks.
 */
import { createHash, randomUUID } from 'node:crypto';
import { FullBatchFailureError } from '@aws-lambda-powertools/batch';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { Duration } from 'aws-cdk-lib';
import { createOrderEventsHandler } from '../../../lambda/order-events/handler';
import type { OrderEvent } from '../../../lambda/order-events/schema';
import { IDEMPOTENCY_TABLE_ATTRIBUTES } from '../../../lambda/shared/idempotency';
import { ResilientQueue } from '../../../lib/constructs/resilient-queue';
import {
  FakeLogger,
  FakeMetrics,
  createIdempotencyTable,
  lambdaContext,
  sqsEvent,
  sqsRecord,
} from '../../helpers/lambda';
import { MotoServer, motoAvailable } from '../../helpers/moto-server';

const hasMoto = motoAvailable('the order-events worker tests run against DynamoDB and SQS on moto_server');

/** The record lifetime the stack gives the worker: 4-day queue retention, 14-day DLQ, 1 day margin. */
const LIFETIME_SECONDS = ResilientQueue.idempotencyLifetime(Duration.days(4)).toSeconds();

(hasMoto ? describe : describe.skip)('order-events worker on moto_server', () => {
  let moto: MotoServer;
  let dynamo: DynamoDBClient;
  let sqs: SQSClient;
  const tableName = 'idempotency';

  beforeAll(async () => {
    moto = await MotoServer.start();
    dynamo = new DynamoDBClient(moto.clientConfig);
    sqs = new SQSClient(moto.clientConfig);
    await createIdempotencyTable(dynamo, tableName);
  });

  afterAll(async () => {
    dynamo?.destroy();
    sqs?.destroy();
    await moto?.stop();
  });

  /** A handler as index.ts builds it, on moto's DynamoDB; `applied` records every application. */
  function worker(applyDelayMs = 0) {
    const applied: OrderEvent[] = [];
    const logger = new FakeLogger();
    const handler = createOrderEventsHandler({
      logger,
      metrics: new FakeMetrics(),
      persistenceStore: new DynamoDBPersistenceLayer({
        tableName,
        ...IDEMPOTENCY_TABLE_ATTRIBUTES,
        awsSdkV3Client: dynamo,
      }),
      expiresAfterSeconds: LIFETIME_SECONDS,
      apply: async (event) => {
        applied.push(event);
        await new Promise((r) => setTimeout(r, applyDelayMs));
        return { eventId: event.eventId, type: event.type, orderId: event.orderId, via: 'log' };
      },
    });
    return { handler, applied, logger };
  }

  const event = () => ({ eventId: `outbox-${randomUUID()}`, type: 'OrderConfirmed', orderId: randomUUID() });

  test('the same message twice is applied once, and its record outlives a redrive', async () => {
    // GIVEN an event delivered, then delivered again (another messageId, as a redrive gives it)
    const { handler, applied } = worker();
    const body = JSON.stringify(event());
    const before = Math.floor(Date.now() / 1000);
    expect(await handler(sqsEvent(sqsRecord(body)), lambdaContext())).toEqual({ batchItemFailures: [] });
    expect(await handler(sqsEvent(sqsRecord(body)), lambdaContext())).toEqual({ batchItemFailures: [] });
    // THEN it was applied once, and DynamoDB holds one COMPLETED record expiring in 19 days
    expect(applied).toHaveLength(1);
    const key = `order-events#${createHash('md5')
      .update(JSON.stringify(JSON.parse(body).eventId))
      .digest('base64')}`;
    const { Item: record } = await dynamo.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { [IDEMPOTENCY_TABLE_ATTRIBUTES.keyAttr]: { S: key } },
      }),
    );
    expect(record?.status?.S).toBe('COMPLETED');
    expect(record?.data?.M?.eventId?.S).toBe(JSON.parse(body).eventId);
    const expiration = Number(record?.[IDEMPOTENCY_TABLE_ATTRIBUTES.expiryAttr]?.N);
    expect(expiration - before).toBeGreaterThanOrEqual(LIFETIME_SECONDS);
    expect(expiration - before).toBeLessThan(LIFETIME_SECONDS + 60);
  });

  test('copies delivered to several containers at once are applied once', async () => {
    // GIVEN four containers (each its own handler and persistence layer) receiving the same
    // event at the same moment, each application taking 300 ms
    const containers = Array.from({ length: 4 }, () => worker(300));
    const body = JSON.stringify(event());
    // WHEN all four handle it concurrently
    const results = await Promise.all(
      containers.map(({ handler }) =>
        handler(sqsEvent(sqsRecord(body)), lambdaContext()).catch((err: unknown) => err),
      ),
    );
    // THEN exactly one applied it; the others failed their batch (the record was in
    // progress), so SQS redelivers those copies later
    expect(containers.flatMap((c) => c.applied)).toHaveLength(1);
    expect(results.filter((r) => r instanceof FullBatchFailureError)).toHaveLength(3);
    // WHEN a redelivered copy arrives after the first completed
    const late = worker();
    expect(await late.handler(sqsEvent(sqsRecord(body)), lambdaContext())).toEqual({ batchItemFailures: [] });
    // THEN it is not applied again
    expect(late.applied).toHaveLength(0);
  });

  test('a poison message ends in the DLQ after maxReceiveCount receives, and nothing is lost', async () => {
    // GIVEN a queue with maxReceiveCount 3 to its DLQ, five good events and one poison message
    const maxReceiveCount = 3;
    const suffix = randomUUID().slice(0, 8);
    const { QueueUrl: dlqUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: `order-events-${suffix}-dlq` }),
    );
    const { Attributes: dlqAttributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
    );
    const { QueueUrl: queueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `order-events-${suffix}`,
        Attributes: {
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqAttributes!.QueueArn, maxReceiveCount }),
        },
      }),
    );
    const good = Array.from({ length: 5 }, event);
    const poison = '{"eventId": "outbox-poison", "type": "OrderConfirmed"'; // cut short: not JSON
    for (const body of [
      ...good.slice(0, 2).map((e) => JSON.stringify(e)),
      poison,
      ...good.slice(2).map((e) => JSON.stringify(e)),
    ]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    }
    const { handler, applied, logger } = worker();

    // WHEN the receive loop runs as the event source mapping would: receive a batch, invoke,
    // delete what succeeded, leave the failures (visibility 0 here, so they come straight back)
    for (let round = 0; round < 20; round++) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 0,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      if (Messages.length === 0) break;
      const records = Messages.map((m) =>
        sqsRecord(m.Body!, {
          messageId: m.MessageId!,
          receiptHandle: m.ReceiptHandle!,
          attributes: {
            ...sqsRecord('').attributes,
            ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          },
        }),
      );
      let failed: string[];
      try {
        const result = await handler(sqsEvent(...records), lambdaContext());
        failed = result.batchItemFailures.map((f) => f.itemIdentifier);
      } catch (err) {
        if (!(err instanceof FullBatchFailureError)) throw err;
        failed = records.map((r) => r.messageId);
      }
      const done = records.filter((r) => !failed.includes(r.messageId));
      if (done.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
          }),
        );
      }
    }

    // THEN every good event was applied exactly once...
    expect(applied.map((e) => e.eventId).sort()).toEqual(good.map((e) => e.eventId).sort());
    // ...the poison message was handled maxReceiveCount times, each logged with its id...
    const malformed = logger.at('error').filter((e) => e.message.startsWith('malformed'));
    expect(malformed.map((e) => e.extra.receiveCount)).toEqual([1, 2, 3]);
    expect(new Set(malformed.map((e) => e.extra.messageId)).size).toBe(1);
    // ...and it now waits in the DLQ, unchanged, while the source queue is empty
    const { Messages: dead = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    expect(dead.map((m) => [m.MessageId, m.Body])).toEqual([[malformed[0].extra.messageId, poison]]);
    const { Attributes: left } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(left).toEqual({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
  });
});
