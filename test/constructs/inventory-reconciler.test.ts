import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { FleetDatabase } from '../../lib/constructs/fleet';
import {
  InventoryReconciler,
  InventoryReconcilerProps,
  LAMBDA_AMAZON_CA_BUNDLE,
} from '../../lib/constructs/inventory-reconciler';
import { ResilientQueue } from '../../lib/constructs/resilient-queue';
import { PAYMENT_RETRY_CONSUMER_TIMEOUT } from '../../lib/stacks/regional-stack';
import { ROOT, buildTestApp, shippedConfig } from '../helpers/app';
import { threeTierVpc } from '../helpers/vpc';

const ENV = { account: '111111111111', region: 'us-east-1' };

/** The database as the reconciler sees it: a host, a port, a user and a grant (a stand-in, no cluster). */
function database(stack: Stack, withProxy: boolean): FleetDatabase {
  return {
    endpoint: withProxy
      ? 'shop-proxy.proxy-abc.us-east-1.rds.amazonaws.com'
      : 'shop.cluster-abc.us-east-1.rds.amazonaws.com',
    connectionPort: withProxy ? 5432 : 5433,
    applicationUser: 'checkout',
    proxy: withProxy ? ({ dbProxyName: 'shop-proxy' } as unknown as FleetDatabase['proxy']) : undefined,
    grantConnect: (grantee, user) =>
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['rds-db:connect'],
        resourceArns: [
          stack.formatArn({ service: 'rds-db', resource: 'dbuser', resourceName: `prx-abc/${user}` }),
        ],
      }),
  };
}

function build(
  props: Partial<InventoryReconcilerProps> = {},
  options: { proxy?: boolean; retention?: Duration } = {},
) {
  const stack = new Stack(undefined, 'Test', { env: ENV });
  const vpc = threeTierVpc(stack);
  const securityGroup = new ec2.SecurityGroup(stack, 'Workers', { vpc });
  const topic = new sns.Topic(stack, 'Topic');
  const queue = new ResilientQueue(stack, 'PaymentRetry', {
    consumerTimeout: PAYMENT_RETRY_CONSUMER_TIMEOUT,
    queueProps: { queueName: 'shop-payment-retry', retentionPeriod: options.retention ?? Duration.days(7) },
  });
  const reconciler = new InventoryReconciler(stack, 'Reconciler', {
    database: database(stack, options.proxy ?? true),
    paymentRetryQueue: queue,
    vpc: { vpc, securityGroup },
    alarmTopic: topic,
    ...props,
  });
  return { stack, topic, securityGroup, queue, reconciler };
}

const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

describe('InventoryReconciler', () => {
  const { stack, topic, securityGroup, reconciler } = build();
  const template = Template.fromStack(stack);
  const fnId = id(stack, reconciler.worker.function);
  const fn = template.toJSON().Resources[fnId].Properties;

  test('runs every 15 minutes; a tick older than that is dropped, a failed delivery retried twice', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 900 },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId },
      MaximumEventAgeInSeconds: 900,
      MaximumRetryAttempts: 2,
    });
  });

  test('one run at a time, 90 s each, in the VPC with the workers group', () => {
    expect(fn).toMatchObject({
      Timeout: 90,
      ReservedConcurrentExecutions: 1,
      MemorySize: 256,
      Architectures: ['arm64'],
      VpcConfig: { SecurityGroupIds: [{ 'Fn::GetAtt': [id(stack, securityGroup), 'GroupId'] }] },
    });
    expect(JSON.stringify(fn.VpcConfig.SubnetIds)).toMatch(/AppSubnet1.*AppSubnet2/);
  });

  test('holds orders 22 days by default: no copy of their payment-retry message can exist after that', () => {
    expect(reconciler.holdTime.toDays()).toBe(7 + 14 + 1);
    expect(fn.Environment.Variables).toMatchObject({
      HOLD_MS: String(Duration.days(22).toMilliseconds()),
      POWERTOOLS_SERVICE_NAME: 'inventory-reconciler',
      POWERTOOLS_METRICS_NAMESPACE: 'ResilientShop/Inventory',
    });
    // and it follows the queue's retention
    const short = build({}, { retention: Duration.days(3) });
    expect(short.reconciler.holdTime.toDays()).toBe(3 + 14 + 1);
  });

  test('logs in through the proxy as checkout with IAM auth, and may do nothing else with CloudWatch', () => {
    expect(fn.Environment.Variables).toMatchObject({
      DB_IAM_AUTH: 'true',
      DB_HOST: 'shop-proxy.proxy-abc.us-east-1.rds.amazonaws.com',
      DB_PORT: '5432',
      DB_USER: 'checkout',
    });
    expect(fn.Environment.Variables.NODE_EXTRA_CA_CERTS).toBeUndefined();
    const statements = Object.values(template.findResources('AWS::IAM::ManagedPolicy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as { Action: string | string[] }[],
    );
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions).toContain('rds-db:connect');
    // metrics go out as EMF log lines: no PutMetricData
    expect(actions.filter((a) => a.startsWith('cloudwatch:'))).toEqual([]);
  });

  test('alarms on any drift and on two failed (or missing) runs, each linking its runbook', () => {
    const actions = [{ Ref: id(stack, topic) }];
    const dimensions = [{ Name: 'service', Value: 'inventory-reconciler' }];
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'ResilientShop/Inventory',
      MetricName: 'InventoryDrift',
      Dimensions: dimensions,
      Statistic: 'Maximum',
      Period: 900,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'ignore',
      AlarmActions: actions,
      OKActions: actions,
      AlarmDescription: Match.stringLikeRegexp('Runbook: docs/runbooks/inventory-drift\\.md$'),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'RunFailed',
      Dimensions: dimensions,
      Statistic: 'Maximum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      TreatMissingData: 'breaching',
      AlarmActions: actions,
      AlarmDescription: Match.stringLikeRegexp('Runbook: docs/runbooks/inventory-reconciler-failed\\.md$'),
    });
    const own = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter(
      (a) => a.Properties.Namespace === 'ResilientShop/Inventory',
    );
    expect(own).toHaveLength(2);
    const readme = readFileSync(join(ROOT, 'docs/runbooks/README.md'), 'utf8');
    for (const runbook of ['inventory-drift', 'inventory-reconciler-failed']) {
      expect(existsSync(join(ROOT, 'docs/runbooks', `${runbook}.md`))).toBe(true);
      expect(readme).toContain(`(${runbook}.md)`);
    }
  });

  test('unscheduled and without a proxy (the standby): rule disabled, RDS CAs trusted, silence expected', () => {
    // GIVEN the standby's shape WHEN built
    const standby = build({ enabled: false }, { proxy: false });
    const t = Template.fromStack(standby.stack);
    const env =
      t.toJSON().Resources[id(standby.stack, standby.reconciler.worker.function)].Properties.Environment
        .Variables;
    // THEN the schedule exists but is off, the cluster is reached directly, and no run is not a failure
    t.hasResourceProperties('AWS::Events::Rule', { State: 'DISABLED' });
    expect(env).toMatchObject({ DB_PORT: '5433', NODE_EXTRA_CA_CERTS: LAMBDA_AMAZON_CA_BUNDLE });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'RunFailed',
      TreatMissingData: 'notBreaching',
    });
  });

  test.each([
    [
      { holdTime: Duration.days(2) },
      {},
      /holdTime 2 days is shorter than the shop-payment-retry queue's retention 7 days/,
    ],
    [
      { interval: Duration.seconds(30) },
      {},
      /interval 30 seconds must be whole minutes from 1 minute to 12 hours/,
    ],
    [{ interval: Duration.hours(13) }, {}, /interval 13 hours must be whole minutes/],
    [{ timeout: Duration.seconds(30) }, {}, /timeout 30 s must be from 75 s/],
    [{ interval: Duration.minutes(1) }, {}, /timeout 90 s must be from 75 s .* to the interval \(60 s\)/],
  ])('refuses %j', (props, options, message) => {
    expect(() => build(props as Partial<InventoryReconcilerProps>, options)).toThrow(message);
  });
});

describe('InventoryReconciler in the shipped stacks', () => {
  const { stacks } = buildTestApp(shippedConfig('default'));

  test.each([
    ['primary', stacks.primary, 'ENABLED'],
    ['standby', stacks.standby!, 'ENABLED'],
  ] as const)(
    '%s: its schedule, a connect grant on its database as checkout, its alarms on the alarm topic',
    (_name, stack, state) => {
      const template = Template.fromStack(stack);
      const reconciler = stack.inventoryReconciler;
      const fn = template.toJSON().Resources[id(stack, reconciler.worker.function)].Properties;
      template.hasResourceProperties('AWS::Events::Rule', {
        State: state,
        Targets: [
          Match.objectLike({ Arn: { 'Fn::GetAtt': [id(stack, reconciler.worker.function), 'Arn'] } }),
        ],
      });
      // the workers' group, the proxy (primary) or the cluster (standby)
      expect(fn.VpcConfig.SecurityGroupIds).toEqual([
        { 'Fn::GetAtt': [id(stack, stack.securityGroups.lambda), 'GroupId'] },
      ]);
      const target = stack.database.proxy ?? stack.database.cluster;
      // every grant of the worker lands in its role's one managed policy
      const policy = template.toJSON().Resources[id(stack, reconciler.worker.policy)].Properties;
      const connect = (policy.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]).filter(
        (s) => s.Action === 'rds-db:connect',
      );
      expect(connect).toHaveLength(1);
      const resource = JSON.stringify(connect[0].Resource);
      expect(resource).toContain(stack.getLogicalId(target.node.defaultChild as never));
      expect(resource).toMatch(/\/checkout"/);
      for (const alarm of reconciler.alarms) {
        const props = template.toJSON().Resources[id(stack, alarm)].Properties;
        expect(props.AlarmActions).toEqual([{ Ref: id(stack, stack.alarmTopic.topic) }]);
      }
    },
  );
});
