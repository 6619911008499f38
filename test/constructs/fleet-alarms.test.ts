import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { ROOT, buildTestApp, shippedConfig } from '../helpers/app';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const production = buildTestApp(shippedConfig('default')).stacks;
const lean = buildTestApp(shippedConfig('lean')).stacks;
const primary = Template.fromStack(production.primary);
const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

function alarm(stack: RegionalStack, template: Template, alarmId: string): Json {
  const construct = stack.fleetAlarms.alarms.find((a) => a.node.id === alarmId);
  if (!construct) throw new Error(`no alarm ${alarmId}`);
  return template.toJSON().Resources[id(stack, construct)].Properties;
}

/**
 * Evaluates a one-datapoint metric math expression of the kind the rate alarms use (IF,
 * FILL, + - * /, comparisons), with `undefined` for a metric that has no datapoint (ELB
 * reports nothing it has nothing to count). Enough to check what an alarm reads in an outage.
 */
function evaluate(expression: string, values: Record<string, number | undefined>): number | undefined {
  const js = expression.replace(/FILL\((\w+), (\d+)\)/g, '($1 ?? $2)').replace(/IF\(/g, 'iff(');
  const iff = (c: boolean, a: number | undefined, b: number | undefined) => (c ? a : b);
  const names = Object.keys(values);
  // No metric with a datapoint: the expression has no timestamp to produce one at.
  if (names.every((n) => values[n] === undefined)) return undefined;
  // A metric without a datapoint makes plain arithmetic on it yield no datapoint.
  const result = new Function('iff', ...names, `return ${js};`)(iff, ...names.map((n) => values[n])) as
    number | undefined;
  return result === undefined || Number.isNaN(result) ? undefined : result;
}

const runbookOf = (description: string) =>
  /Runbook: docs\/runbooks\/([a-z0-9-]+)\.md$/.exec(description)?.[1];

describe('fleet alarms', () => {
  test('every alarm names a runbook that exists and is listed in docs/runbooks/README.md', () => {
    const readme = readFileSync(join(ROOT, 'docs/runbooks/README.md'), 'utf8');
    const all = [
      ...production.primary.fleetAlarms.alarms,
      production.primary.fleetAlarms.servingImpaired,
      production.primary.fleetAlarms.capacityShort,
    ];
    const runbooks = new Set(
      all.map((a) => {
        const props = primary.toJSON().Resources[id(production.primary, a)].Properties;
        return runbookOf(props.AlarmDescription)!;
      }),
    );
    expect([...runbooks].sort()).toEqual(
      [
        'fleet-alb-5xx',
        'fleet-target-5xx',
        'fleet-latency',
        'fleet-unhealthy-hosts',
        'fleet-healthy-hosts',
        'fleet-rejected-connections',
        'fleet-waf-blocked',
        'fleet-circuit-breaker',
        'fleet-requests-shed',
        'fleet-certificate-expiry',
        'fleet-checkout-impaired',
        'fleet-gateway-rejected',
        'fleet-outbox',
      ].sort(),
    );
    for (const runbook of runbooks) {
      expect(existsSync(join(ROOT, 'docs/runbooks', `${runbook}.md`))).toBe(true);
      expect(readme).toContain(`(${runbook}.md)`);
    }
  });

  test('each notifies the alarm topic when it fires and when it recovers', () => {
    for (const stack of [production.primary, production.standby!, lean.primary]) {
      const template = Template.fromStack(stack);
      const topic = { Ref: id(stack, stack.alarmTopic.topic) };
      for (const a of stack.fleetAlarms.alarms) {
        const props = template.toJSON().Resources[id(stack, a)].Properties;
        expect(props).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
      }
      // The serving composite pages through the region's "checkout impaired", not itself.
      const serving = template.toJSON().Resources[id(stack, stack.fleetAlarms.servingImpaired)].Properties;
      expect(serving.AlarmActions).toBeUndefined();
    }
  });

  test('5xx rates: load balancer and target 5xx over 1% of requests, 3 minutes running', () => {
    for (const [alarmId, metric] of [
      ['Alb5xxRate', 'HTTPCode_ELB_5XX_Count'],
      ['Target5xxRate', 'HTTPCode_Target_5XX_Count'],
    ]) {
      const props = alarm(production.primary, primary, alarmId);
      expect(props).toMatchObject({ Threshold: 1, EvaluationPeriods: 3, DatapointsToAlarm: 3 });
      const byId = Object.fromEntries(
        (props.Metrics as Json[])
          .filter((m) => m.MetricStat)
          .map((m) => [m.Id, m.MetricStat.Metric.MetricName]),
      );
      expect(byId).toEqual({ errors: metric, requests: 'RequestCount' });
    }
    const expression = (alarmId: string) =>
      (alarm(production.primary, primary, alarmId).Metrics as Json[]).find((m) => m.Expression)!
        .Expression as string;
    // a healthy minute, and 2% errors, read the same through both
    for (const alarmId of ['Alb5xxRate', 'Target5xxRate']) {
      expect(evaluate(expression(alarmId), { requests: 1000, errors: 0 })).toBe(0);
    }
    expect(evaluate(expression('Target5xxRate'), { requests: 1000, errors: 20 })).toBe(2);
    expect(evaluate(expression('Alb5xxRate'), { requests: 1000, errors: 20 })).toBeCloseTo(1.96, 2);
  });

  test("the load balancer's 5xx rate reads 100% when no target can be chosen (RequestCount leaves those 503s out)", () => {
    // GIVEN a minute in which the fleet has no registered target: ELB answers 503 itself and
    // reports no RequestCount ("only incremented for requests where the load balancer node
    // was able to choose a target")
    const props = alarm(production.primary, primary, 'Alb5xxRate');
    const expression = (props.Metrics as Json[]).find((m) => m.Expression)!.Expression as string;
    // WHEN the alarm's expression is evaluated THEN it reads a total outage, above the threshold
    expect(evaluate(expression, { requests: undefined, errors: 600 })).toBe(100);
    expect(evaluate(expression, { requests: 0, errors: 600 })).toBe(100);
    expect(evaluate(expression, { requests: undefined, errors: undefined })).toBeUndefined();
  });

  test('p99 target response time above 2 s for 3 minutes', () => {
    expect(alarm(production.primary, primary, 'P99Latency')).toMatchObject({
      MetricName: 'TargetResponseTime',
      ExtendedStatistic: 'p99',
      Threshold: 2,
      EvaluationPeriods: 3,
    });
  });

  test('unhealthy hosts for longer than a replacement takes (5 minutes)', () => {
    expect(alarm(production.primary, primary, 'UnhealthyHosts')).toMatchObject({
      MetricName: 'UnHealthyHostCount',
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 5,
    });
  });

  test('healthy hosts below the per-AZ minimum: one alarm per AZ in production, no data counting as none', () => {
    const stack = production.primary;
    stack.availabilityZones.forEach((az, i) => {
      const props = alarm(stack, primary, `HealthyHostsAz${i + 1}`);
      expect(props).toMatchObject({
        MetricName: 'HealthyHostCount',
        Statistic: 'Minimum',
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      });
      expect(props.Dimensions).toContainEqual({ Name: 'AvailabilityZone', Value: az });
    });
  });

  test('healthy hosts below the minimum of the whole fleet where it is smaller than one per AZ (standby 2, lean 1)', () => {
    for (const [stack, min] of [
      [production.standby!, 2],
      [lean.primary, 1],
    ] as const) {
      const props = alarm(stack, Template.fromStack(stack), 'HealthyHosts');
      expect(props).toMatchObject({
        MetricName: 'HealthyHostCount',
        Threshold: min,
        ComparisonOperator: 'LessThanThreshold',
      });
      expect(props.Dimensions.map((d: Json) => d.Name)).not.toContain('AvailabilityZone');
    }
  });

  test('healthy hosts after the loss of one AZ: the minimum less the largest AZ share, never below 1 (production 3 -> 2, standby 2 -> 1, lean 1 -> 1)', () => {
    for (const [stack, threshold] of [
      [production.primary, 2],
      [production.standby!, 1],
      [lean.primary, 1],
    ] as const) {
      const props = alarm(stack, Template.fromStack(stack), 'HealthyHostsAfterAzLoss');
      expect(props).toMatchObject({
        MetricName: 'HealthyHostCount',
        Statistic: 'Minimum',
        Threshold: threshold,
        ComparisonOperator: 'LessThanThreshold',
        EvaluationPeriods: 3,
        TreatMissingData: 'breaching',
      });
      expect(props.Dimensions.map((d: Json) => d.Name)).not.toContain('AvailabilityZone');
      expect(stack.fleetAlarms.staticStabilityAlarm.node.id).toBe('HealthyHostsAfterAzLoss');
      // Not a blocking alarm of practice runs: those are the per-AZ (or whole-fleet minimum) ones.
      expect(stack.fleetAlarms.healthyHostAlarms).not.toContain(stack.fleetAlarms.staticStabilityAlarm);
    }
  });

  test("the service's own failures no other alarm sees: gateway rejections, parked outbox messages, an outbox backlog", () => {
    const namespace = {
      Namespace: 'ResilientShop/Checkout',
      Dimensions: [{ Name: 'Service', Value: 'checkout' }],
    };
    expect(alarm(production.primary, primary, 'GatewayRejected')).toMatchObject({
      ...namespace,
      MetricName: 'PaymentRequestsRejected',
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
    });
    expect(alarm(production.primary, primary, 'OutboxMessagesParked')).toMatchObject({
      ...namespace,
      MetricName: 'OutboxMessagesParked',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(alarm(production.primary, primary, 'OutboxBacklog')).toMatchObject({
      ...namespace,
      MetricName: 'OutboxOldestPendingSeconds',
      Statistic: 'Maximum',
      Period: 60,
      Threshold: 300,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
    });
    // The names the alarms read are the ones the service publishes.
    const published =
      readFileSync(join(ROOT, 'service/metrics.ts'), 'utf8') +
      readFileSync(join(ROOT, 'service/outbox/relay.ts'), 'utf8');
    for (const name of ['PaymentRequestsRejected', 'OutboxMessagesParked', 'OutboxOldestPendingSeconds']) {
      expect(published).toContain(name);
    }
  });

  test('rejected connections: any', () => {
    expect(alarm(production.primary, primary, 'RejectedConnections')).toMatchObject({
      MetricName: 'RejectedConnectionCount',
      Threshold: 0,
      EvaluationPeriods: 1,
    });
  });

  test('WAF blocked-request spike: more than 500 in 5 minutes, on the web ACL of this stack', () => {
    const props = alarm(production.primary, primary, 'WafBlockedSpike');
    expect(props).toMatchObject({
      Namespace: 'AWS/WAFV2',
      MetricName: 'BlockedRequests',
      Period: 300,
      Threshold: 500,
    });
    expect(props.Dimensions).toEqual(
      expect.arrayContaining([
        { Name: 'WebACL', Value: production.primary.loadBalancer.webAclName },
        { Name: 'Rule', Value: 'ALL' },
        { Name: 'Region', Value: 'us-east-1' },
      ]),
    );
  });

  test('circuit breaker open for 2 minutes, and requests shed in each of 5 minutes', () => {
    expect(alarm(production.primary, primary, 'CircuitBreakerOpen')).toMatchObject({
      MetricName: 'CircuitBreakerOpen',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 2,
    });
    expect(alarm(production.primary, primary, 'RequestsShed')).toMatchObject({
      MetricName: 'RequestsShed',
      Statistic: 'Sum',
      Threshold: 0,
      EvaluationPeriods: 5,
    });
  });

  test('certificate DaysToExpiry below 45 (ACM renews from 60 days out), in the certificate region; missing days keep the last state', () => {
    const stack = production.primary;
    expect(alarm(stack, primary, 'CertificateExpiry')).toMatchObject({
      // ACM stops publishing once the certificate has expired: that must not read as OK
      TreatMissingData: 'ignore',
      Namespace: 'AWS/CertificateManager',
      MetricName: 'DaysToExpiry',
      Statistic: 'Minimum',
      Period: 86400,
      Threshold: 45,
      ComparisonOperator: 'LessThanThreshold',
      Dimensions: [{ Name: 'CertificateArn', Value: { Ref: id(stack, stack.loadBalancer.certificate) } }],
    });
  });

  test('capacity short (the practice-run blocking alarm) is any healthy-host alarm, and pages nobody twice', () => {
    for (const [stack, members] of [
      [production.primary, ['HealthyHostsAz1', 'HealthyHostsAz2', 'HealthyHostsAz3']],
      [production.standby!, ['HealthyHosts']],
      [lean.primary, ['HealthyHosts']],
    ] as const) {
      expect(stack.fleetAlarms.healthyHostAlarms.map((a) => a.node.id)).toEqual(members);
      const props =
        Template.fromStack(stack).toJSON().Resources[id(stack, stack.fleetAlarms.capacityShort)].Properties;
      const rule = JSON.stringify(props.AlarmRule);
      for (const member of stack.fleetAlarms.healthyHostAlarms) expect(rule).toContain(id(stack, member));
      expect(rule.match(/ALARM\(/g)).toHaveLength(members.length);
      // its members notify the topic; it only blocks practice runs
      expect(props.AlarmActions).toBeUndefined();
      expect(runbookOf(props.AlarmDescription)).toBe('fleet-healthy-hosts');
    }
  });

  test('serving impaired (the autoshift practice-run outcome) is any of 5xx, latency or the breaker', () => {
    const stack = production.primary;
    const rule =
      primary.toJSON().Resources[id(stack, stack.fleetAlarms.servingImpaired)].Properties.AlarmRule;
    const text = JSON.stringify(rule);
    for (const alarmId of ['Alb5xxRate', 'Target5xxRate', 'P99Latency', 'CircuitBreakerOpen']) {
      const construct = stack.fleetAlarms.alarms.find((a) => a.node.id === alarmId)!;
      expect(text).toContain(id(stack, construct));
    }
  });
});
