import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { IdempotencyTable } from '../../lib/constructs/idempotency-table';
import {
  ORDER_EVENTS_TIMEOUT,
  OrderEventsWorker,
  OrderEventsWorkerProps,
} from '../../lib/constructs/order-events-worker';
import { DEAD_LETTER_RETENTION, ResilientQueue } from '../../lib/constructs/resilient-queue';

const ENV = { account: '111111111111', region: 'us-east-1' };

function build(props: Partial<OrderEventsWorkerProps> = {}, retention = Duration.days(7)) {
  const stack = new Stack(undefined, 'Test', { env: ENV });
  const queue = new ResilientQueue(stack, 'OrderEvents', {
    consumerTimeout: ORDER_EVENTS_TIMEOUT,
    queueProps: { queueName: 'shop-order-events', retentionPeriod: retention },
  });
  const table = new IdempotencyTable(stack, 'Idempotency', { protectData: false }).table;
  const worker = new OrderEventsWorker(stack, 'OrderEventsWorker', {
    queue,
    idempotencyTable: table,
    ...props,
  });
  return { stack, queue, table, worker };
}

const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

describe('OrderEventsWorker', () => {
  const { stack, queue, table, worker } = build();
  const template = Template.fromStack(stack);
  const fn = template.toJSON().Resources[id(stack, worker.worker.function)].Properties;

  test('keeps idempotency records longer than the queue retention plus a redrive from the DLQ', () => {
    const seconds = Number(fn.Environment.Variables.IDEMPOTENCY_EXPIRES_AFTER_SECONDS);
    expect(seconds).toBe(queue.idempotencyLifetime.toSeconds());
    expect(seconds).toBe(Duration.days(7 + 14 + 1).toSeconds());
    expect(seconds).toBeGreaterThan(queue.retentionPeriod.toSeconds() + DEAD_LETTER_RETENTION.toSeconds());
    // and it follows the queue's retention
    const short = build({}, Duration.days(2));
    const shortFn = Template.fromStack(short.stack).toJSON().Resources[
      id(short.stack, short.worker.worker.function)
    ];
    expect(Number(shortFn.Properties.Environment.Variables.IDEMPOTENCY_EXPIRES_AFTER_SECONDS)).toBe(
      Duration.days(2 + 14 + 1).toSeconds(),
    );
  });

  test('names the idempotency table, logs instead of calling out when no fulfilment URL is set', () => {
    expect(fn.Environment.Variables).toMatchObject({
      IDEMPOTENCY_TABLE_NAME: { Ref: id(stack, table) },
      FULFILMENT_TIMEOUT_MS: '5000',
      POWERTOOLS_SERVICE_NAME: 'order-events',
    });
    expect(fn.Environment.Variables.FULFILMENT_URL).toBeUndefined();
    expect(fn.Timeout).toBe(30);
  });

  test('consumes the queue with batch item failures', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [id(stack, queue.queue), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  test('may do to the table exactly what Powertools idempotency does (get, put, update, delete), and nothing else', () => {
    const statements = template.toJSON().Resources[id(stack, worker.worker.policy)].Properties.PolicyDocument
      .Statement as { Action: string | string[]; Resource: unknown }[];
    const onTable = statements
      .filter((s) => JSON.stringify(s.Resource).includes(id(stack, table)))
      .map((s) => ({ ...s, Action: [s.Action].flat().sort() }));
    expect(onTable).toEqual([
      {
        Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [id(stack, table), 'Arn'] },
      },
    ]);
    expect(
      statements
        .flatMap((s) => [s.Action].flat())
        .filter((a) => a.startsWith('sqs:'))
        .sort(),
    ).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ]);
  });

  test('passes an https fulfilment URL on, and refuses anything else', () => {
    const withUrl = build({ fulfilmentUrl: 'https://fulfilment.example.com/events' });
    const vars = Template.fromStack(withUrl.stack).toJSON().Resources[
      id(withUrl.stack, withUrl.worker.worker.function)
    ].Properties.Environment.Variables;
    expect(vars.FULFILMENT_URL).toBe('https://fulfilment.example.com/events');
    expect(() => build({ fulfilmentUrl: 'http://fulfilment.example.com' })).toThrow(
      /fulfilmentUrl must be an https:\/\/ URL .* got "http:\/\/fulfilment.example.com"/,
    );
  });

  test('refuses a fulfilment timeout that does not fit in the function timeout', () => {
    expect(() => build({ fulfilmentTimeout: Duration.seconds(30) })).toThrow(
      /fulfilmentTimeout 30 s must be shorter than the function's timeout 30 s/,
    );
  });

  test('works with the replica of a global table in the standby region (imported by name)', () => {
    const standby = new Stack(undefined, 'Standby', { env: { ...ENV, region: 'us-west-2' } });
    const queue2 = new ResilientQueue(standby, 'OrderEvents', {
      consumerTimeout: ORDER_EVENTS_TIMEOUT,
      queueProps: { queueName: 'q' },
    });
    const replica = dynamodb.TableV2.fromTableName(standby, 'Replica', 'resilient-shop-idempotency');
    const w = new OrderEventsWorker(standby, 'W', { queue: queue2, idempotencyTable: replica });
    const policy = Template.fromStack(standby).toJSON().Resources[id(standby, w.worker.policy)];
    expect(JSON.stringify(policy)).toContain(
      ':dynamodb:us-west-2:111111111111:table/resilient-shop-idempotency',
    );
  });
});
