import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { buildTestApp, shippedConfig } from '../helpers/app';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const production = buildTestApp(shippedConfig('default')).stacks;
const lean = buildTestApp(shippedConfig('lean')).stacks;
const regional: [string, RegionalStack][] = [
  ['production primary', production.primary],
  ['production standby', production.standby!],
  ['lean primary', lean.primary],
];
const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);
const resources = (stack: Stack): Record<string, Json> => Template.fromStack(stack).toJSON().Resources;
const ofType = (stack: Stack, type: string) =>
  Object.entries(resources(stack)).filter(([, r]) => r.Type === type);

/** The logical ids of the alarms a composite alarm rule names. */
function ruleMembers(rule: unknown): string[] {
  return [...JSON.stringify(rule).matchAll(/"Fn::GetAtt":\["([A-Za-z0-9]+)","Arn"\]/g)]
    .map((m) => m[1])
    .sort();
}

/** The dashboard's body with its tokens resolved to the logical ids they reference. */
function dashboardBody(stack: Stack): string {
  const dashboards = ofType(stack, 'AWS::CloudWatch::Dashboard');
  expect(dashboards).toHaveLength(1);
  const body = dashboards[0][1].Properties.DashboardBody;
  if (typeof body === 'string') return body;
  return (body['Fn::Join'][1] as unknown[])
    .map((part) => {
      if (typeof part === 'string') return part;
      const p = part as Json;
      if (p['Fn::GetAtt']) return `<${p['Fn::GetAtt'][0]}.${p['Fn::GetAtt'][1]}>`;
      if (p.Ref) return `<${p.Ref}>`;
      return JSON.stringify(p);
    })
    .join('');
}

describe("checkout impaired: the region's composite", () => {
  test.each(regional)(
    '%s: any of serving impaired, capacity after one AZ, a dead letter in either queue, or the writer unavailable',
    (_, stack) => {
      const props = resources(stack)[id(stack, stack.monitoring.checkoutImpaired)].Properties;
      const expected = [
        stack.fleetAlarms.servingImpaired,
        stack.fleetAlarms.staticStabilityAlarm,
        stack.messaging.orderEvents.deadLettersAlarm,
        stack.messaging.paymentRetry.deadLettersAlarm,
        ...(stack.database.writerUnavailableAlarm ? [stack.database.writerUnavailableAlarm] : []),
      ].map((a) => id(stack, a));
      expect(ruleMembers(props.AlarmRule)).toEqual([...expected].sort());
      expect(String(props.AlarmRule).includes(' AND ')).toBe(false);
      expect(props.AlarmDescription).toMatch(/Runbook: docs\/runbooks\/fleet-checkout-impaired\.md$/);
      const topic = { Ref: id(stack, stack.alarmTopic.topic) };
      expect(props).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
    },
  );

  test('the writer alarm exists where RDS Proxy runs (both primaries) and not in the standby, which has no proxy', () => {
    expect(production.primary.database.writerUnavailableAlarm).toBeDefined();
    expect(lean.primary.database.writerUnavailableAlarm).toBeDefined();
    expect(production.standby!.database.proxy).toBeUndefined();
    expect(production.standby!.database.writerUnavailableAlarm).toBeUndefined();
  });

  test('writer unavailable: RDS Proxy found the READ_WRITE target available under half of 2 minutes running', () => {
    const stack = production.primary;
    const props = resources(stack)[id(stack, stack.database.writerUnavailableAlarm!)].Properties;
    expect(props).toMatchObject({
      Namespace: 'AWS/RDS',
      MetricName: 'AvailabilityPercentage',
      Statistic: 'Average',
      Period: 60,
      Threshold: 50,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
    });
    expect(props.Dimensions).toEqual(
      expect.arrayContaining([
        { Name: 'ProxyName', Value: { Ref: id(stack, stack.database.proxy!) } },
        { Name: 'TargetGroup', Value: 'default' },
        { Name: 'TargetRole', Value: 'READ_WRITE' },
      ]),
    );
    expect(props.AlarmDescription).toMatch(/Runbook: docs\/runbooks\/database-writer-unavailable\.md$/);
  });

  test.each(regional)('%s: every FIS experiment stops on it', (_, stack) => {
    const arn = { 'Fn::GetAtt': [id(stack, stack.monitoring.checkoutImpaired), 'Arn'] };
    const templates = ofType(stack, 'AWS::FIS::ExperimentTemplate');
    expect(templates.length).toBeGreaterThan(0);
    for (const [, t] of templates) {
      expect(t.Properties.StopConditions).toContainEqual({ Source: 'aws:cloudwatch:alarm', Value: arn });
    }
  });
});

describe("the region's dashboard", () => {
  test.each(regional)(
    '%s: one dashboard, named after the stack (dashboards are global to the account)',
    (_, stack) => {
      const [[, dashboard]] = ofType(stack, 'AWS::CloudWatch::Dashboard');
      expect(dashboard.Properties.DashboardName).toBe(stack.stackName);
    },
  );

  test.each(regional)(
    '%s: its alarm widget shows every alarm of the stack, composites included',
    (_, stack) => {
      const body = dashboardBody(stack);
      const alarms = [
        ...ofType(stack, 'AWS::CloudWatch::Alarm'),
        ...ofType(stack, 'AWS::CloudWatch::CompositeAlarm'),
      ].map(([logicalId]) => logicalId);
      // Two composites exist only as members or blocking alarms (no actions); the rest page.
      const shown = alarms.filter((a) => body.includes(`<${a}.Arn>`));
      const composites = new Set(
        [stack.fleetAlarms.servingImpaired, stack.fleetAlarms.capacityShort].map((a) => id(stack, a)),
      );
      expect(alarms.filter((a) => !shown.includes(a) && !composites.has(a))).toEqual([]);
      expect(shown.length).toBeGreaterThan(20);
    },
  );

  test.each(regional)('%s: a section per tier, from the resources this stack created', (_, stack) => {
    const body = dashboardBody(stack);
    const ref = (construct: { node: { defaultChild?: unknown } }) => `<${id(stack, construct)}`;
    // load balancer and target group (hand-written widgets), per AZ
    expect(body).toContain('AWS/ApplicationELB');
    for (const az of stack.availabilityZones) expect(body).toContain(`"AvailabilityZone","${az}"`);
    // the fleet (library ASG section) and the service's own metrics
    expect(body).toContain('AWS/AutoScaling');
    expect(body).toContain(ref(stack.fleet.autoScalingGroup));
    for (const metric of [
      'CircuitBreakerOpen',
      'RequestsShed',
      'OrdersPendingPayment',
      'OutboxMessagesParked',
    ]) {
      expect(body).toContain(`"${metric}"`);
    }
    // database
    expect(body).toContain('AWS/RDS');
    expect(body).toContain(ref(stack.database.cluster));
    // queues and their DLQs
    for (const q of [stack.messaging.orderEvents, stack.messaging.paymentRetry]) {
      expect(body).toContain(`${ref(q.queue)}.QueueName>`);
      expect(body).toContain(`${ref(q.deadLetterQueue)}.QueueName>`);
    }
    // every worker
    for (const w of [
      stack.orderEventsWorker.worker,
      stack.paymentRetryWorker.worker,
      stack.inventoryReconciler.worker,
      stack.certificateProbe.worker,
    ]) {
      expect(body).toContain(`${ref(w.function)}>`);
    }
    // idempotency table, web ACL, certificates (ACM's and the probe's)
    expect(body).toContain('AWS/DynamoDB');
    expect(body).toContain('AWS/WAFV2');
    expect(body).toContain('AWS/CertificateManager');
    expect(body).toContain('"DaysToExpiry","Endpoint"');
    expect(body).toContain('"InventoryDrift"');
  });

  test.each(regional)(
    '%s: the monitoring library creates no alarm of its own (each alarm carries a runbook)',
    (_, stack) => {
      const fromLibrary = Object.values(resources(stack)).filter(
        (r) =>
          (r.Type === 'AWS::CloudWatch::Alarm' || r.Type === 'AWS::CloudWatch::CompositeAlarm') &&
          String(r.Metadata?.['aws:cdk:path'] ?? '').includes('/Monitoring/') &&
          !String(r.Metadata?.['aws:cdk:path']).endsWith('/Monitoring/CheckoutImpaired/Resource'),
      );
      expect(fromLibrary).toEqual([]);
    },
  );
});
