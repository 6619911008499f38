/**
 * Tiers 5 and 6 as RegionalStack wires them: the queues of each region, who may send to and
 * consume them, the workers' placement and tables, the probe's endpoints, the alarms'
 * topic; and that the wiring pack really checks the workers' path to their endpoints.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Network } from '../../lib/constructs/network';
import { CertificateProbe } from '../../lib/constructs/certificate-probe';
import { OrderEventsWorker, ORDER_EVENTS_TIMEOUT } from '../../lib/constructs/order-events-worker';
import { ResilientQueue } from '../../lib/constructs/resilient-queue';
import { SecurityGroups } from '../../lib/constructs/security-groups';
import { IdempotencyTable } from '../../lib/constructs/idempotency-table';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { buildTestApp, shippedConfig } from '../helpers/app';
import { logicalId, wiringFindings } from '../nag/fixtures';

const { stacks } = buildTestApp(shippedConfig('default'));
const regions: [string, RegionalStack][] = [
  ['primary', stacks.primary],
  ['standby', stacks.standby!],
];

describe.each(regions)('messaging and workers of the %s stack', (_name, stack) => {
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Record<
    string,
    { Type: string; Properties: Record<string, unknown> }
  >;
  const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
  const { orderEvents, paymentRetry } = stack.messaging;

  test('has order-events and payment-retry, each with its DLQ, named after the stack', () => {
    const names = Object.values(resources)
      .filter((r) => r.Type === 'AWS::SQS::Queue')
      .map((r) => r.Properties.QueueName)
      .sort();
    expect(names).toEqual(
      ['order-events', 'order-events-dlq', 'payment-retry', 'payment-retry-dlq'].map(
        (n) => `${stack.stackName}-${n}`,
      ),
    );
    // the fleet sends to the same queues
    expect(stack.queues).toEqual({ orderEvents: orderEvents.queue, paymentRetry: paymentRetry.queue });
  });

  test("the fleet's role may send to both queues and encrypt for them through SQS", () => {
    const fleetPolicy = Object.values(resources).find(
      (r) =>
        r.Type === 'AWS::IAM::ManagedPolicy' && JSON.stringify(r.Properties).includes('SendOutboxMessages'),
    )!;
    const statements = (
      fleetPolicy.Properties.PolicyDocument as { Statement: { Sid?: string; Resource: unknown }[] }
    ).Statement;
    expect(statements.find((s) => s.Sid === 'SendOutboxMessages')!.Resource).toEqual([
      { 'Fn::GetAtt': [id(orderEvents.queue), 'Arn'] },
      { 'Fn::GetAtt': [id(paymentRetry.queue), 'Arn'] },
    ]);
    expect(JSON.stringify(statements.find((s) => s.Sid === 'EncryptOutboxMessages')!.Resource)).toContain(
      id(orderEvents.encryptionKey as never),
    );
  });

  test('each queue is consumed by its worker: order-events by the order-events worker, payment-retry by the payment-retry worker', () => {
    const mappings = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::EventSourceMapping');
    expect(mappings.map((m) => [m.Properties.EventSourceArn, m.Properties.FunctionName])).toEqual([
      [
        { 'Fn::GetAtt': [id(orderEvents.queue), 'Arn'] },
        { Ref: id(stack.orderEventsWorker.worker.function) },
      ],
      [
        { 'Fn::GetAtt': [id(paymentRetry.queue), 'Arn'] },
        { Ref: id(stack.paymentRetryWorker.worker.function) },
      ],
    ]);
  });

  test('the workers run in the VPC with the workers security group', () => {
    for (const worker of [
      stack.orderEventsWorker.worker,
      stack.paymentRetryWorker.worker,
      stack.certificateProbe.worker,
    ]) {
      const vpcConfig = resources[id(worker.function)].Properties.VpcConfig as {
        SecurityGroupIds: unknown[];
      };
      expect(vpcConfig.SecurityGroupIds).toEqual([
        { 'Fn::GetAtt': [id(stack.securityGroups.lambda), 'GroupId'] },
      ]);
    }
  });

  test('the order-events worker uses the idempotency table of the region: its own, or the replica by name', () => {
    const vars = (
      resources[id(stack.orderEventsWorker.worker.function)].Properties.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    if (stack.idempotencyTable) {
      expect(vars.IDEMPOTENCY_TABLE_NAME).toEqual({ Ref: id(stack.idempotencyTable.table) });
      expect(resources[id(stack.idempotencyTable.table)].Properties.TableName).toBe(
        'resilient-shop-idempotency',
      );
    } else {
      expect(vars.IDEMPOTENCY_TABLE_NAME).toBe('resilient-shop-idempotency');
    }
  });

  test("the probe reads the public name and the region's own name", () => {
    expect(stack.certificateProbe.endpoints.map((e) => e.label)).toEqual([
      'shop.example.com',
      `${stack.region}.shop.example.com`,
    ]);
  });

  test('every queue, payment-retry worker and probe alarm notifies the alarm topic, when it fires and when it recovers', () => {
    const topic = { Ref: id(stack.alarmTopic.topic) };
    const alarms = [
      ...orderEvents.alarms,
      ...paymentRetry.alarms,
      ...stack.paymentRetryWorker.alarms,
      ...stack.certificateProbe.alarms,
    ];
    expect(alarms).toHaveLength(11);
    for (const alarm of alarms) {
      expect(resources[id(alarm)].Properties).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
    }
  });
});

describe("the wiring pack checks the workers' way to their interface endpoints", () => {
  /** A production-like network (interface endpoints, private DNS) with both workers in it. */
  function workers(stack: Stack, admitWorkers: boolean) {
    const network = new Network(stack, 'Network', { availabilityZones: ['us-east-1a', 'us-east-1b'] });
    const groups = new SecurityGroups(stack, 'Groups', {
      vpc: network.vpc,
      allowedIngressCidrs: ['10.0.0.0/8'],
    });
    if (admitWorkers) network.allowEndpointAccessFrom(groups.lambda, 'HTTPS from the workers');
    const vpc = { vpc: network.vpc, securityGroup: groups.lambda };
    const queue = new ResilientQueue(stack, 'OrderEvents', {
      consumerTimeout: ORDER_EVENTS_TIMEOUT,
      queueProps: { queueName: 'fixture-order-events' },
    });
    const table = new IdempotencyTable(stack, 'Idempotency', { protectData: false }).table;
    const orderEvents = new OrderEventsWorker(stack, 'OrderEventsWorker', {
      queue,
      idempotencyTable: table,
      vpc,
    });
    const probe = new CertificateProbe(stack, 'Probe', { endpoints: ['shop.example.com'], vpc });
    return { network, orderEvents, probe };
  }

  test('workers whose group the endpoints do not admit are reported, per service they call', () => {
    let built!: ReturnType<typeof workers>;
    const findings = wiringFindings((stack) => (built = workers(stack, false)));
    const endpoint = (name: string) => logicalId(built.network.interfaceEndpoints[name]);
    // order-events decrypts its queue's messages (KMS); the probe publishes metrics (CloudWatch)
    expect(findings).toEqual(
      [
        `ResilientShopWiring-EndpointReach[kms:${endpoint('Kms')}] at Fixture/OrderEventsWorker/Worker/Function/Resource`,
        `ResilientShopWiring-EndpointReach[cloudwatch:${endpoint('CloudWatch')}] at Fixture/Probe/Worker/Function/Resource`,
      ].sort(),
    );
  });

  test('admitted, they have no finding (and no key policy names their roles)', () => {
    expect(wiringFindings((stack) => workers(stack, true))).toEqual([]);
  });
});
