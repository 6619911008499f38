import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  GATEWAY_REJECTED_METRIC,
  PAYMENT_RETRY_METRICS_NAMESPACE,
  recordWorstCaseMs,
} from '../../lambda/payment-retry/contract';
import { Database } from '../../lib/constructs/database';
import { IdempotencyTable } from '../../lib/constructs/idempotency-table';
import {
  LAMBDA_RUNTIME_CA_CERTIFICATES,
  PAYMENT_RETRY_TIMEOUT,
  PaymentRetryWorker,
  PaymentRetryWorkerProps,
} from '../../lib/constructs/payment-retry-worker';
import { ResilientQueue, VISIBILITY_TIMEOUT_FACTOR } from '../../lib/constructs/resilient-queue';
import { threeTierVpc } from '../helpers/vpc';

const ENV = { account: '111111111111', region: 'us-east-1' };

type Overrides = Partial<Omit<PaymentRetryWorkerProps, 'queue' | 'idempotencyTable' | 'database' | 'vpc'>>;

/** A stack with the queue, table, database (primary with RDS Proxy, or a global secondary without) and the worker. */
function build(overrides: Overrides = {}, options: { standby?: boolean; gateway?: boolean } = {}) {
  const app = new App();
  const stack = new Stack(app, 'Test', { env: ENV });
  const vpc = threeTierVpc(stack);
  const group = (id: string) => new ec2.SecurityGroup(stack, id, { vpc });
  const lambdaGroup = group('LambdaSg');
  const database = new Database(stack, 'Database', {
    vpc,
    securityGroup: group('DbSg'),
    proxySecurityGroup: group('ProxySg'),
    availabilityZones: ['us-east-1a', 'us-east-1b'],
    protectData: false,
    global: options.standby ? { role: 'secondary', globalClusterIdentifier: 'shop-global' } : undefined,
    // the standby runs one instance (RegionalStack): its clients connect to it
    readers: options.standby ? 0 : undefined,
  });
  const queue = new ResilientQueue(stack, 'PaymentRetry', {
    consumerTimeout: PAYMENT_RETRY_TIMEOUT,
    queueProps: { queueName: 'shop-payment-retry' },
  });
  const table = new IdempotencyTable(stack, 'Idempotency', { protectData: false }).table;
  const secret = secretsmanager.Secret.fromSecretNameV2(
    stack,
    'ApiKey',
    'resilient-shop/payment-gateway-api-key',
  );
  const withGateway = options.gateway ?? overrides.sandbox !== true;
  const worker = new PaymentRetryWorker(stack, 'PaymentRetryWorker', {
    queue,
    idempotencyTable: table,
    database,
    vpc: { vpc, securityGroup: lambdaGroup },
    paymentGateway: withGateway
      ? { url: 'https://api.payments.example.com', apiKeySecret: secret }
      : undefined,
    ...overrides,
  });
  return { app, stack, vpc, lambdaGroup, database, queue, table, worker };
}

const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

/** The Allow statements of the worker's one managed policy, actions sorted. */
function statements(stack: Stack, worker: PaymentRetryWorker) {
  const doc = Template.fromStack(stack).toJSON().Resources[id(stack, worker.worker.policy)].Properties
    .PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown; Effect: string }[] };
  return doc.Statement.map((s) => ({ ...s, Action: [s.Action].flat().sort() }));
}

describe('PaymentRetryWorker (primary: RDS Proxy, real gateway)', () => {
  const { stack, lambdaGroup, database, queue, table, worker } = build();
  const template = Template.fromStack(stack);
  const fn = template.toJSON().Resources[id(stack, worker.worker.function)].Properties;

  test('a 60 s timeout, reserved concurrency 2, arm64 on the worker runtime', () => {
    expect(fn.Timeout).toBe(60);
    expect(fn.ReservedConcurrentExecutions).toBe(2);
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.Runtime).toBe(lambda.Runtime.NODEJS_24_X.name);
    // and the timeout covers the longest a record can take
    expect(fn.Timeout * 1000).toBeGreaterThan(recordWorstCaseMs());
  });

  test('runs in the VPC, in the private subnets, with the workers security group only', () => {
    expect(fn.VpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [id(stack, lambdaGroup), 'GroupId'] }]);
    const privateSubnets = Object.entries(template.findResources('AWS::EC2::Subnet'))
      .filter(([, r]) =>
        (r.Properties.Tags as { Key: string; Value: string }[]).some(
          (t) => t.Key === 'aws-cdk:subnet-type' && t.Value === 'Private',
        ),
      )
      .map(([logicalId]) => ({ Ref: logicalId }));
    expect(fn.VpcConfig.SubnetIds).toEqual(privateSubnets);
  });

  test('consumes the queue with batch item failures, 10 records a batch, at most its reserved concurrency', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [id(stack, queue.queue), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  test('the queue keeps a received message hidden for at least 6 x the function timeout', () => {
    const visibility = template.toJSON().Resources[id(stack, queue.queue)].Properties.VisibilityTimeout;
    expect(visibility).toBeGreaterThanOrEqual(VISIBILITY_TIMEOUT_FACTOR * fn.Timeout);
  });

  test('connects to the proxy endpoint as the application user, signing its own token, TLS against public CAs', () => {
    const proxy = id(stack, database.proxy!);
    expect(fn.Environment.Variables).toMatchObject({
      DB_HOST: { 'Fn::GetAtt': [proxy, 'Endpoint'] },
      DB_PORT: '5432',
      DB_USER: 'checkout',
      POWERTOOLS_SERVICE_NAME: 'payment-retry',
      POWERTOOLS_METRICS_NAMESPACE: PAYMENT_RETRY_METRICS_NAMESPACE,
    });
    expect(fn.Environment.Variables.NODE_EXTRA_CA_CERTS).toBeUndefined();
  });

  test('keeps idempotency records for the queue lifetime rule, in the given table', () => {
    expect(fn.Environment.Variables.IDEMPOTENCY_TABLE_NAME).toEqual({ Ref: id(stack, table) });
    expect(Number(fn.Environment.Variables.IDEMPOTENCY_EXPIRES_AFTER_SECONDS)).toBe(
      queue.idempotencyLifetime.toSeconds(),
    );
  });

  test('charges the real gateway with the key of the named secret; no sandbox', () => {
    expect(fn.Environment.Variables).toMatchObject({
      PAYMENT_URL: 'https://api.payments.example.com',
      PAYMENT_API_KEY_SECRET_ID: 'resilient-shop/payment-gateway-api-key',
    });
    expect(fn.Environment.Variables.PAYMENT_SANDBOX).toBeUndefined();
  });

  test('may connect as checkout through the proxy, use the idempotency table, read the key, consume the queue; nothing else', () => {
    const all = statements(stack, worker);
    const proxy = id(stack, database.proxy!);
    const connect = all.filter((s) => s.Action.includes('rds-db:connect'));
    expect(connect).toHaveLength(1);
    expect(JSON.stringify(connect[0].Resource)).toContain(proxy);
    expect(JSON.stringify(connect[0].Resource)).toMatch(/\/checkout"/);
    expect(all.filter((s) => JSON.stringify(s.Resource).includes(id(stack, table)))).toEqual([
      {
        Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [id(stack, table), 'Arn'] },
      },
    ]);
    const secretStatements = all.filter((s) => s.Action.some((a) => a.startsWith('secretsmanager:')));
    expect(secretStatements).toHaveLength(1);
    expect(secretStatements[0].Action).toEqual([
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetSecretValue',
    ]);
    expect(JSON.stringify(secretStatements[0].Resource)).toContain(
      ':secret:resilient-shop/payment-gateway-api-key-??????',
    );
    expect(
      all
        .flatMap((s) => s.Action)
        .filter((a) => a.startsWith('sqs:'))
        .sort(),
    ).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ]);
    // Every service the role may call: the ones above, the queue key, logs, X-Ray and the VPC interfaces.
    expect(new Set(all.flatMap((s) => s.Action).map((a) => a.split(':')[0]))).toEqual(
      new Set(['rds-db', 'dynamodb', 'secretsmanager', 'sqs', 'kms', 'logs', 'xray', 'ec2']),
    );
  });

  test('three alarms, each linking its runbook; the rejection alarm reads the metric the handler emits', () => {
    expect(worker.alarms.map((a) => id(stack, a))).toHaveLength(3);
    for (const [alarm, runbook] of [
      [worker.errorsAlarm, 'payment-retry-errors'],
      [worker.throttlesAlarm, 'payment-retry-throttles'],
      [worker.gatewayRejectedAlarm, 'payment-retry-gateway-rejected'],
    ] as const) {
      const props = template.toJSON().Resources[id(stack, alarm)].Properties;
      expect(props.AlarmDescription).toMatch(new RegExp(`Runbook: docs/runbooks/${runbook}\\.md$`));
      expect(existsSync(join(__dirname, '..', '..', 'docs', 'runbooks', `${runbook}.md`))).toBe(true);
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: PAYMENT_RETRY_METRICS_NAMESPACE,
      MetricName: GATEWAY_REJECTED_METRIC,
      Dimensions: [{ Name: 'service', Value: fn.Environment.Variables.POWERTOOLS_SERVICE_NAME }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: id(stack, worker.worker.function) } }],
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
    });
  });
});

describe('PaymentRetryWorker bundle', () => {
  test('leaves out the SDK signer and its credential chain (the worker signs its own tokens), and stays under 250 KB', () => {
    const { app, worker } = build();
    const assembly = app.synth();
    const code = (worker.worker.function.node.defaultChild as lambda.CfnFunction).code as { s3Key: string };
    const dir = join(assembly.directory, `asset.${code.s3Key.replace(/\.zip$/, '')}`);
    const sources = (JSON.parse(readFileSync(join(dir, 'index.js.map'), 'utf8')) as { sources: string[] })
      .sources;
    expect(
      sources.filter((s) => /@aws-sdk\/(rds-signer|credential-provider|nested-clients)/.test(s)),
    ).toEqual([]);
    expect(sources.some((s) => s.endsWith('lambda/shared/rds-auth-token.ts'))).toBe(true);
    expect(sources.some((s) => s.endsWith('service/orders/outcome.ts'))).toBe(true);
    expect(statSync(join(dir, 'index.js')).size).toBeLessThan(250 * 1024);
  });
});

describe('PaymentRetryWorker in the standby (no proxy) and the sandbox', () => {
  test("connects to the cluster's instance on its port, trusting the RDS CAs of the Lambda runtime", () => {
    const { stack, database, worker } = build({}, { standby: true });
    const fn = Template.fromStack(stack).toJSON().Resources[id(stack, worker.worker.function)].Properties;
    expect(database.proxy).toBeUndefined();
    expect(fn.Environment.Variables).toMatchObject({
      // the secondary's writer endpoint is inactive until promotion: its one instance
      DB_HOST: { 'Fn::GetAtt': [expect.stringMatching(/Writer/), 'Endpoint.Address'] },
      DB_PORT: '5433',
      NODE_EXTRA_CA_CERTS: LAMBDA_RUNTIME_CA_CERTIFICATES,
    });
    const connect = statements(stack, worker).filter((s) => s.Action.includes('rds-db:connect'));
    expect(JSON.stringify(connect)).toContain('ClusterResourceId');
    expect(JSON.stringify(connect)).toMatch(/\/checkout"/);
  });

  test('the sandbox runs the fake gateway: no URL, no secret, no permission on any secret', () => {
    const { stack, worker } = build({ sandbox: true });
    const fn = Template.fromStack(stack).toJSON().Resources[id(stack, worker.worker.function)].Properties;
    expect(fn.Environment.Variables.PAYMENT_SANDBOX).toBe('true');
    expect(fn.Environment.Variables.PAYMENT_URL).toBeUndefined();
    expect(fn.Environment.Variables.PAYMENT_API_KEY_SECRET_ID).toBeUndefined();
    expect(
      statements(stack, worker)
        .flatMap((s) => s.Action)
        .filter((a) => a.startsWith('secretsmanager:')),
    ).toEqual([]);
  });

  test('alarms notify the given topic, on alarm and on OK', () => {
    const built = build();
    const topic = new sns.Topic(built.stack, 'Alarms');
    const withTopic = new PaymentRetryWorker(built.stack, 'Second', {
      queue: new ResilientQueue(built.stack, 'Q2', {
        consumerTimeout: PAYMENT_RETRY_TIMEOUT,
        queueProps: { queueName: 'q2' },
      }),
      idempotencyTable: built.table,
      database: built.database,
      vpc: { vpc: built.vpc, securityGroup: built.lambdaGroup },
      sandbox: true,
      alarmTopic: topic,
    });
    const template = Template.fromStack(built.stack);
    for (const alarm of withTopic.alarms) {
      const props = template.toJSON().Resources[id(built.stack, alarm)].Properties;
      expect(props.AlarmActions).toEqual([{ Ref: id(built.stack, topic) }]);
      expect(props.OKActions).toEqual([{ Ref: id(built.stack, topic) }]);
    }
  });
});

describe('PaymentRetryWorker validation', () => {
  test.each<[string, Overrides, { gateway?: boolean }, RegExp]>([
    ['neither gateway nor sandbox', {}, { gateway: false }, /needs paymentGateway unless sandbox is true/],
    [
      'both gateway and sandbox',
      { sandbox: true },
      { gateway: true },
      /give either sandbox or paymentGateway, not both/,
    ],
    [
      'a plain-http gateway',
      {
        paymentGateway: {
          url: 'http://api.payments.example.com',
          apiKeySecret: { secretName: 'x' } as secretsmanager.ISecret,
        },
      },
      {},
      /paymentGateway.url must be an https:\/\/ URL .* got "http:\/\/api.payments.example.com"/,
    ],
    [
      'a timeout shorter than one record can take',
      { timeout: Duration.seconds(30) },
      {},
      /timeout 30 s must be longer than the 39 s one record can take/,
    ],
    [
      'a timeout the queue visibility does not cover',
      { timeout: Duration.seconds(90) },
      {},
      /visibility timeout 360 s is less than 6 x the function's timeout 90 s/,
    ],
    ['a reserved concurrency of 1', { reservedConcurrency: 1 }, {}, /reservedConcurrency 1 is below 2/],
  ])('refuses %s', (_case, overrides, options, message) => {
    expect(() => build(overrides, options)).toThrow(message);
  });
});
