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
      production.primary.fleetAlarms.checkoutImpaired,
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
      for (const a of [...stack.fleetAlarms.alarms, stack.fleetAlarms.checkoutImpaired]) {
        const props = template.toJSON().Resources[id(stack, a)].Properties;
        expect(props).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
      }
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

  test('checkout impaired (the autoshift practice-run outcome) is any of 5xx, latency or the breaker', () => {
    const stack = production.primary;
    const rule =
      primary.toJSON().Resources[id(stack, stack.fleetAlarms.checkoutImpaired)].Properties.AlarmRule;
    const text = JSON.stringify(rule);
    for (const alarmId of ['Alb5xxRate', 'Target5xxRate', 'P99Latency', 'CircuitBreakerOpen']) {
      const construct = stack.fleetAlarms.alarms.find((a) => a.node.id === alarmId)!;
      expect(text).toContain(id(stack, construct));
    }
  });
});
