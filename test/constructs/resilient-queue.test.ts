import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  DEAD_LETTER_RETENTION,
  ResilientQueue,
  ResilientQueueProps,
} from '../../lib/constructs/resilient-queue';
import { ROOT } from '../helpers/app';

const ENV = { account: '111111111111', region: 'us-east-1' };

function build(props: Partial<ResilientQueueProps> = {}) {
  const stack = new Stack(undefined, 'Test', { env: ENV });
  const queue = new ResilientQueue(stack, 'OrderEvents', {
    consumerTimeout: Duration.seconds(30),
    queueProps: { queueName: 'shop-order-events' },
    ...props,
  });
  return {
    stack,
    queue,
    get template() {
      return Template.fromStack(stack);
    },
  };
}

const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

describe('ResilientQueue', () => {
  test('derives the visibility timeout as 6 x the consumer timeout (plus the batching window)', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'shop-order-events',
      VisibilityTimeout: 180,
    });
    build({ consumerBatchingWindow: Duration.seconds(10) }).template.hasResourceProperties(
      'AWS::SQS::Queue',
      {
        QueueName: 'shop-order-events',
        VisibilityTimeout: 190,
      },
    );
  });

  test('refuses a visibility timeout under 6 x the consumer timeout, naming both values', () => {
    expect(() => build({ visibilityTimeout: Duration.seconds(120) })).toThrow(
      /shop-order-events: visibilityTimeout 120 s is less than 6 x the consumer's timeout 30 s = 180 s; raise visibilityTimeout to at least 180 s/,
    );
    expect(() =>
      build({ visibilityTimeout: Duration.seconds(185), consumerBatchingWindow: Duration.seconds(10) }),
    ).toThrow(
      /visibilityTimeout 185 s is less than 6 x the consumer's timeout 30 s \+ batching window 10 s = 190 s/,
    );
    // a longer one is accepted as given
    build({ visibilityTimeout: Duration.seconds(600) }).template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'shop-order-events',
      VisibilityTimeout: 600,
    });
  });

  test("refuses a consumer timeout whose 6x exceeds SQS's 12-hour visibility maximum", () => {
    expect(() => build({ consumerTimeout: Duration.hours(3) })).toThrow(/exceeds SQS's 12-hour maximum/);
  });

  test('moves a message to the DLQ after maxReceiveCount receives (5 unless given)', () => {
    const { stack, queue, template } = build();
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'shop-order-events',
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [id(stack, queue.deadLetterQueue), 'Arn'] },
        maxReceiveCount: 5,
      },
    });
    build({ maxReceiveCount: 3 }).template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'shop-order-events',
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }),
    });
    expect(() => build({ maxReceiveCount: 0 })).toThrow(
      /maxReceiveCount must be a whole number from 1 to 1000, got 0/,
    );
  });

  test('keeps dead letters 14 days, and the source queue 7 days unless told', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'shop-order-events-dlq',
      MessageRetentionPeriod: 14 * 86_400,
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'shop-order-events',
      MessageRetentionPeriod: 7 * 86_400,
    });
  });

  test("refuses a source retention as long as the DLQ's (a dead letter would expire on arrival)", () => {
    expect(() => build({ queueProps: { queueName: 'q', retentionPeriod: Duration.days(14) } })).toThrow(
      /retentionPeriod 14 days must be shorter than the DLQ's 14 days/,
    );
  });

  test('the DLQ accepts dead letters from its source queue only (redrive-allow policy)', () => {
    build().template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'shop-order-events-dlq',
      RedriveAllowPolicy: {
        redrivePermission: 'byQueue',
        sourceQueueArns: [
          {
            'Fn::Join': [
              '',
              ['arn:', { Ref: 'AWS::Partition' }, ':sqs:us-east-1:111111111111:shop-order-events'],
            ],
          },
        ],
      },
    });
  });

  test('encrypts both queues with one customer managed key, rotated, whose policy names no role', () => {
    const { stack, queue, template } = build();
    const keyId = id(stack, queue.encryptionKey as never);
    for (const name of ['shop-order-events', 'shop-order-events-dlq']) {
      template.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: name,
        KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      });
    }
    const key = template.toJSON().Resources[keyId];
    expect(key.Properties.EnableKeyRotation).toBe(true);
    // Only the account root: producers and consumers get the key in their own policies.
    expect(key.Properties.KeyPolicy.Statement.map((s: { Principal: unknown }) => s.Principal)).toEqual([
      { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111111111111:root']] } },
    ]);
  });

  test('grantSend and grantConsume put queue and key permissions in the grantee policy, not the key policy', () => {
    // GIVEN a producer and a consumer role
    const { stack, queue } = build();
    const producer = new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() });
    const consumer = new iam.Role(stack, 'Consumer', { assumedBy: new iam.AccountRootPrincipal() });
    queue.grantSend(producer);
    queue.grantConsume(consumer);
    const template = Template.fromStack(stack);
    const statementsOf = (role: iam.Role) =>
      Object.values(template.findResources('AWS::IAM::Policy')).find((p) =>
        JSON.stringify(p.Properties.Roles).includes(id(stack, role)),
      )!.Properties.PolicyDocument.Statement;
    const keyArn = { 'Fn::GetAtt': [id(stack, queue.encryptionKey as never), 'Arn'] };
    const queueArn = { 'Fn::GetAtt': [id(stack, queue.queue), 'Arn'] };
    expect(statementsOf(producer)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Action: expect.arrayContaining(['sqs:SendMessage']), Resource: queueArn }),
        expect.objectContaining({
          Action: expect.arrayContaining(['kms:GenerateDataKey*', 'kms:Decrypt']),
          Resource: keyArn,
        }),
      ]),
    );
    expect(statementsOf(consumer)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Action: expect.arrayContaining([
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:ChangeMessageVisibility',
          ]),
          Resource: queueArn,
        }),
        expect.objectContaining({ Action: 'kms:Decrypt', Resource: keyArn }),
      ]),
    );
    const keyPolicy =
      template.toJSON().Resources[id(stack, queue.encryptionKey as never)].Properties.KeyPolicy;
    expect(keyPolicy.Statement).toHaveLength(1);
    expect(JSON.stringify(keyPolicy)).not.toMatch(/Producer|Consumer/);
  });

  test('grantRedrive allows the message move task from the DLQ back to the queue', () => {
    const { stack, queue } = build();
    const operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
    queue.grantRedrive(operator);
    const statements = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))[0]
      .Properties.PolicyDocument.Statement;
    expect(statements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Action: expect.arrayContaining([
            'sqs:StartMessageMoveTask',
            'sqs:ListMessageMoveTasks',
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
          ]),
          Resource: { 'Fn::GetAtt': [id(stack, queue.deadLetterQueue), 'Arn'] },
        }),
        expect.objectContaining({
          Action: expect.arrayContaining(['sqs:SendMessage']),
          Resource: { 'Fn::GetAtt': [id(stack, queue.queue), 'Arn'] },
        }),
      ]),
    );
  });

  test('both queues refuse requests without TLS', () => {
    const { stack, queue, template } = build();
    for (const q of [queue.queue, queue.deadLetterQueue]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id(stack, q) }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  test('alarms on any dead letter and on the age of the oldest message, each with its runbook', () => {
    // GIVEN a queue with an alarm topic
    const stack = new Stack(undefined, 'Test', { env: ENV });
    const topic = new sns.Topic(stack, 'Topic');
    const queue = new ResilientQueue(stack, 'OrderEvents', {
      consumerTimeout: Duration.seconds(30),
      queueProps: { queueName: 'shop-order-events' },
      maxMessageAge: Duration.minutes(10),
      alarmTopic: topic,
    });
    const template = Template.fromStack(stack);
    const actions = [{ Ref: id(stack, topic) }];
    // THEN the DLQ alarm fires on one message, and silence keeps its state
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [id(stack, queue.deadLetterQueue), 'QueueName'] } },
      ],
      Statistic: 'Maximum',
      Period: 60,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'ignore',
      AlarmActions: actions,
      OKActions: actions,
      AlarmDescription: Match.stringLikeRegexp('Runbook: docs/runbooks/queue-dead-letters\\.md$'),
    });
    // ...and the age alarm on the source queue at the configured age
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(stack, queue.queue), 'QueueName'] } }],
      Threshold: 600,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      AlarmActions: actions,
      OKActions: actions,
      AlarmDescription: Match.stringLikeRegexp('Runbook: docs/runbooks/queue-message-age\\.md$'),
    });
    const readme = readFileSync(join(ROOT, 'docs/runbooks/README.md'), 'utf8');
    for (const runbook of ['queue-dead-letters', 'queue-message-age']) {
      expect(existsSync(join(ROOT, 'docs/runbooks', `${runbook}.md`))).toBe(true);
      expect(readme).toContain(`(${runbook}.md)`);
    }
  });

  test('without a topic the alarms have no actions, for AlarmTopic.notify', () => {
    const { template } = build();
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(2);
    expect(alarms.map((a) => a.Properties.AlarmActions)).toEqual([undefined, undefined]);
  });

  test('the idempotency record lifetime outlasts the queue retention plus a redrive from the DLQ', () => {
    // retention + DLQ retention + 1 day for a producer's late re-send
    expect(build().queue.idempotencyLifetime.toDays()).toBe(7 + 14 + 1);
    const oneDay = build({ queueProps: { queueName: 'q', retentionPeriod: Duration.days(1) } }).queue;
    expect(oneDay.idempotencyLifetime.toSeconds()).toBe(Duration.days(1 + 14 + 1).toSeconds());
    expect(oneDay.idempotencyLifetime.toSeconds()).toBeGreaterThan(
      oneDay.retentionPeriod.toSeconds() + DEAD_LETTER_RETENTION.toSeconds(),
    );
  });

  test('the removal policy applies to both queues and the key', () => {
    const template = build({ queueProps: { queueName: 'q', removalPolicy: RemovalPolicy.RETAIN } }).template;
    for (const type of ['AWS::SQS::Queue', 'AWS::KMS::Key']) {
      expect(Object.values(template.findResources(type)).map((r) => r.DeletionPolicy)).toEqual(
        type === 'AWS::KMS::Key' ? ['Retain'] : ['Retain', 'Retain'],
      );
    }
  });

  test('names the queue from its construct path when no name is given, and refuses a bad one', () => {
    const stack = new Stack(undefined, 'Test', { env: ENV });
    const queue = new ResilientQueue(stack, 'PaymentRetry', { consumerTimeout: Duration.seconds(60) });
    expect(queue.queueName).toMatch(/^Test-PaymentRetry-[A-F0-9]{8}$/);
    expect(() => build({ queueProps: { queueName: 'has space' } })).toThrow(
      /must be 1-76 letters, digits, - or _/,
    );
  });
});
