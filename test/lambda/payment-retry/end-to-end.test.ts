/**
 * End to end, on a moto_server this file starts (SQS and DynamoDB) and real PostgreSQL:
 * the checkout service defers orders while its gateway hangs and its outbox relay
 * publishes them to the payment-retry queue; the gateway comes back; two worker
 * "containers" (two handlers, as reserved concurrency 2 runs them, each with its own
 * gateway client and Powertools' DynamoDB persistence layer on one idempotency table)
 * drain the queue as the event source mapping does, with every message delivered twice,
 * reading the gateway's API key from Secrets Manager. Every order ends CONFIRMED (or
 * declined and released) exactly once, the stock adds up, and the events the worker wrote
 * reach the order-events queue through the service's relay.
 */
import { FullBatchFailureError } from '@aws-lambda-powertools/batch';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Pool } from 'pg';
import { secretKeyGateway } from '../../../lambda/payment-retry/gateway';
import { createPaymentRetryHandler } from '../../../lambda/payment-retry/handler';
import { retryDeferredPayment } from '../../../lambda/payment-retry/settle';
import { IDEMPOTENCY_TABLE_ATTRIBUTES } from '../../../lambda/shared/idempotency';
import { API_KEY_READ_TIMEOUT_MS, secretsManagerReader } from '../../../service/payment-api-key';
import { HttpPaymentGateway } from '../../../service/payment-client';
import {
  FakeLogger,
  FakeMetrics,
  createIdempotencyTable,
  lambdaContext,
  sqsEvent,
  sqsRecord,
} from '../../helpers/lambda';
import { MotoServer, motoAvailable } from '../../helpers/moto-server';
import { TestDatabase, createTestDatabase, describeWithPostgres } from '../../service/helpers/database';
import { Harness, setStock, startHarness } from '../../service/helpers/harness';
import { waitFor } from '../../service/helpers/wait-for';
import { FAST_POLICY, OrderSpec, orderState, placeDeferredOrders, stockOf, workerPool } from './helpers';

const hasMoto = motoAvailable('the payment-retry end-to-end test runs SQS and DynamoDB on moto_server');

(hasMoto ? describeWithPostgres : describe.skip)(
  'payment-retry end to end (checkout service, SQS, DynamoDB)',
  () => {
    let moto: MotoServer;
    let sqs: SQSClient;
    let dynamo: DynamoDBClient;
    let db: TestDatabase;
    let h: Harness;
    let pool: Pool;
    let queues: { paymentRetry: string; dlq: string; orderEvents: string };
    let savedEndpoint: string | undefined;
    let apiKeySecretArn: string;
    const tableName = 'idempotency';
    const API_KEY = 'sk_test_payment_retry_e2e';

    beforeAll(async () => {
      moto = await MotoServer.start();
      sqs = new SQSClient(moto.clientConfig);
      dynamo = new DynamoDBClient(moto.clientConfig);
      await createIdempotencyTable(dynamo, tableName);
      const queueUrl = async (name: string, attributes?: Record<string, string>) =>
        (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl!;
      const dlq = await queueUrl('payment-retry-dlq');
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] }),
      );
      queues = {
        dlq,
        paymentRetry: await queueUrl('payment-retry', {
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 5 }),
        }),
        orderEvents: await queueUrl('order-events'),
      };
      // The gateway's API key, where the worker reads it from.
      const secrets = new SecretsManagerClient(moto.clientConfig);
      apiKeySecretArn = (
        await secrets.send(
          new CreateSecretCommand({ Name: 'payment-gateway-api-key', SecretString: API_KEY }),
        )
      ).ARN!;
      secrets.destroy();
      // The service's outbox relay, and the worker's Secrets Manager reader, reach moto
      // through the SDK's standard variable.
      savedEndpoint = process.env.AWS_ENDPOINT_URL;
      process.env.AWS_ENDPOINT_URL = moto.endpoint;
      db = await createTestDatabase();
      h = await startHarness(db, {
        ORDER_EVENTS_QUEUE_URL: queues.orderEvents,
        PAYMENT_RETRY_QUEUE_URL: queues.paymentRetry,
      });
      pool = workerPool(db);
    }, 90_000);

    afterAll(async () => {
      await pool?.end();
      await h?.stop();
      await db?.drop();
      if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL;
      else process.env.AWS_ENDPOINT_URL = savedEndpoint;
      sqs?.destroy();
      dynamo?.destroy();
      await moto?.stop();
    });

    /** One worker container, as index.ts builds it: its handler, gateway client (the key from Secrets Manager) and persistence layer. */
    function container(): {
      handler: ReturnType<typeof createPaymentRetryHandler>;
      gateway: HttpPaymentGateway;
    } {
      const { gateway } = secretKeyGateway({
        url: h.config.PAYMENT_URL,
        secretId: apiKeySecretArn,
        read: secretsManagerReader({ region: 'us-east-1', timeoutMs: API_KEY_READ_TIMEOUT_MS }),
        logger: new FakeLogger(),
        policy: FAST_POLICY,
      });
      const handler = createPaymentRetryHandler({
        logger: new FakeLogger(),
        metrics: new FakeMetrics(),
        persistenceStore: new DynamoDBPersistenceLayer({
          tableName,
          ...IDEMPOTENCY_TABLE_ATTRIBUTES,
          awsSdkV3Client: dynamo,
        }),
        expiresAfterSeconds: 1_900_800,
        retry: (orderId) => retryDeferredPayment({ pool, gateway }, orderId),
      });
      return { handler, gateway };
    }

    /** One poll of the event source mapping: receive a batch, invoke, delete what succeeded. */
    async function poll(handler: ReturnType<typeof createPaymentRetryHandler>): Promise<number> {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queues.paymentRetry,
          MaxNumberOfMessages: 10,
          // A failed record comes straight back (the real queue waits out its visibility timeout).
          VisibilityTimeout: 0,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      if (Messages.length === 0) return 0;
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
        failed = (await handler(sqsEvent(...records), lambdaContext())).batchItemFailures.map(
          (f) => f.itemIdentifier,
        );
      } catch (err) {
        if (!(err instanceof FullBatchFailureError)) throw err;
        failed = records.map((r) => r.messageId);
      }
      const done = records.filter((r) => !failed.includes(r.messageId));
      if (done.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queues.paymentRetry,
            Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
          }),
        );
      }
      return Messages.length;
    }

    const queueDepth = async (url: string) => {
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return (
        Number(Attributes!.ApproximateNumberOfMessages) +
        Number(Attributes!.ApproximateNumberOfMessagesNotVisible)
      );
    };

    test('gateway hung -> orders deferred -> gateway back -> worker drains the queue: each order settled once, stock right', async () => {
      // GIVEN stock of two SKUs, and orders placed while the gateway hangs: the service
      // defers all of them (one with a token the gateway will decline)
      await setStock(h.service.url, 'E2E-A', 50);
      await setStock(h.service.url, 'E2E-B', 50);
      const specs: OrderSpec[] = [
        { items: [{ sku: 'E2E-A', quantity: 2 }] },
        { items: [{ sku: 'E2E-B', quantity: 1 }] },
        {
          items: [
            { sku: 'E2E-A', quantity: 1 },
            { sku: 'E2E-B', quantity: 3 },
          ],
        },
        { items: [{ sku: 'E2E-A', quantity: 5 }] },
        { items: [{ sku: 'E2E-B', quantity: 2 }] },
        { items: [{ sku: 'E2E-A', quantity: 1 }] },
        { items: [{ sku: 'E2E-B', quantity: 4 }], paymentToken: 'tok_decline' },
      ];
      const ids = await placeDeferredOrders(h, specs);
      const declinedId = ids[ids.length - 1];
      const confirmedIds = ids.slice(0, -1);
      expect(await stockOf(db, 'E2E-A')).toBe(50 - 9);
      expect(await stockOf(db, 'E2E-B')).toBe(50 - 10);
      for (const id of ids) expect((await orderState(db, id)).status).toBe('PENDING_PAYMENT');
      expect(h.payment.charges.size).toBe(0);

      // WHEN the relay has published every PaymentDeferred to the payment-retry queue...
      await waitFor(async () => (await queueDepth(queues.paymentRetry)) === ids.length, {
        timeoutMs: 15_000,
        message: 'the relay did not publish the deferred orders',
      });
      // ...every message is there twice (at-least-once delivery: a relay re-send)...
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queues.paymentRetry,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 0,
        }),
      );
      expect(Messages).toHaveLength(ids.length);
      for (const m of Messages) {
        await sqs.send(new SendMessageCommand({ QueueUrl: queues.paymentRetry, MessageBody: m.Body! }));
      }
      // ...the gateway now requires its API key (which the service's loopback fake did not
      // ask of the checkouts)...
      h.payment.apiKey = API_KEY;
      // ...and two worker containers poll the queue at once until it is empty
      const containers = [container(), container()];
      try {
        for (let round = 0; round < 30; round++) {
          const received = await Promise.all(containers.map((c) => poll(c.handler)));
          if (received.every((n) => n === 0) && (await queueDepth(queues.paymentRetry)) === 0) break;
        }
      } finally {
        for (const c of containers) c.gateway.close();
      }

      // THEN the queue and its DLQ are empty...
      expect(await queueDepth(queues.paymentRetry)).toBe(0);
      expect(await queueDepth(queues.dlq)).toBe(0);
      // ...every order was charged exactly once (one gateway request each, the duplicates
      // never reached it) and confirmed with that charge, with one OrderConfirmed...
      for (const id of confirmedIds) {
        const charge = h.payment.charges.get(id);
        expect({ id, requests: charge?.requests }).toEqual({ id, requests: 1 });
        expect(await orderState(db, id)).toEqual({
          status: 'CONFIRMED',
          chargeId: charge!.chargeId,
          released: false,
          events: ['OrderConfirmed'],
        });
      }
      // ...every charge carried the API key read from Secrets Manager...
      expect(h.payment.unauthorizedRequests).toBe(0);
      expect(h.payment.lastAuthorization).toBe(`Bearer ${API_KEY}`);
      // ...the declined order took no charge and was released once, with one event...
      expect(h.payment.charges.has(declinedId)).toBe(false);
      expect(await orderState(db, declinedId)).toEqual({
        status: 'PAYMENT_DECLINED',
        chargeId: null,
        released: true,
        events: ['OrderPaymentDeclined'],
      });
      // ...one COMPLETED idempotency record per order kept the second copies away...
      const { Items = [] } = await dynamo.send(new ScanCommand({ TableName: tableName }));
      expect(Items.map((i) => i.status?.S)).toEqual(ids.map(() => 'COMPLETED'));
      expect(Items.every((i) => i.id?.S?.startsWith('payment-retry#'))).toBe(true);
      // ...the stock is what the confirmed orders took, the declined one's units back...
      expect(await stockOf(db, 'E2E-A')).toBe(50 - 9);
      expect(await stockOf(db, 'E2E-B')).toBe(50 - 6);
      // ...and the service's relay published the worker's events to order-events, one per order
      const events: Record<string, unknown>[] = [];
      await waitFor(
        async () => {
          const { Messages: batch = [] } = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queues.orderEvents, MaxNumberOfMessages: 10 }),
          );
          for (const m of batch) {
            events.push(JSON.parse(m.Body!) as Record<string, unknown>);
            await sqs.send(
              new DeleteMessageBatchCommand({
                QueueUrl: queues.orderEvents,
                Entries: [{ Id: '0', ReceiptHandle: m.ReceiptHandle! }],
              }),
            );
          }
          return events.length >= ids.length;
        },
        { timeoutMs: 15_000, message: 'the worker events did not reach order-events' },
      );
      expect(events.map((e) => `${e.orderId} ${e.type}`).sort()).toEqual(
        [...confirmedIds.map((id) => `${id} OrderConfirmed`), `${declinedId} OrderPaymentDeclined`].sort(),
      );
      // each event named by its order and type (service/outbox/relay.ts, eventIdOf)
      expect(events.map((e) => e.eventId)).toEqual(
        events.map((e) => `${String(e.orderId)}/${String(e.type)}`),
      );
    });
  },
);
