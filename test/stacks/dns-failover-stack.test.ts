import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import {
  HEALTH_CHECKER_REGIONS,
  LOAD_BALANCER_ALIAS_TTL,
  ROUTE53_METRICS_REGION,
} from '../../lib/constructs/failover-dns';
import { ROUTE53_HEALTH_CHECKER_CIDRS } from '../../lib/fleet/route53-health-checkers';
import { DnsFailoverStack } from '../../lib/stacks/dns-failover-stack';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { failoverTimeOf, formatFailoverTime, readCloudAssembly } from '../../scripts/failover-time';
import { ROOT, buildTestApp, configWith, shippedConfig } from '../helpers/app';
import { synthFindings } from '../helpers/gates';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The shipped default app, synthesized once with every compliance pack. */
const { app, stacks } = buildTestApp(shippedConfig('default'));
const { outdir, findings } = synthFindings(app);
const templateOf = (stack: { templateFile: string }) =>
  Template.fromJSON(JSON.parse(readFileSync(join(outdir, stack.templateFile), 'utf8')) as Json);
const dns = templateOf(stacks.dnsFailover!);
const primary = templateOf(stacks.primary);
const standby = templateOf(stacks.standby!);

const resourcesOf = (template: Template, type: string): [string, Json][] =>
  Object.entries(template.findResources(type));
const healthCheckOf = (fqdn: string): [string, Json] => {
  const found = resourcesOf(dns, 'AWS::Route53::HealthCheck').filter(
    ([, r]) => r.Properties.HealthCheckConfig.FullyQualifiedDomainName === fqdn,
  );
  expect(found).toHaveLength(1);
  return found[0];
};

describe('DnsFailoverStack with config/default.json', () => {
  test('is its own stack in us-east-1, where Route 53 health-check metrics live, after both regional stacks', () => {
    const stack = stacks.dnsFailover!;
    expect(stack).toBeInstanceOf(DnsFailoverStack);
    expect(stack.stackName).toBe('ResilientShop-DnsFailover');
    expect(stack.region).toBe(ROUTE53_METRICS_REGION);
    expect(stack.account).toBe('111111111111');
    expect(stack.terminationProtection).toBe(true);
    expect(stack.dependencies.map((s) => s.stackName).sort()).toEqual([
      'ResilientShop-Primary',
      'ResilientShop-Standby',
    ]);
  });

  test('takes no value from another stack: no import, no cross-region reference machinery', () => {
    const text = JSON.stringify(dns.toJSON());
    expect(text).not.toContain('Fn::ImportValue');
    expect(Object.keys(dns.findResources('Custom::CrossRegionExportReader'))).toEqual([]);
    expect(Object.keys(dns.findResources('AWS::Lambda::Function'))).toEqual([]);
    expect(Object.keys(dns.findResources('AWS::CloudFormation::CustomResource'))).toEqual([]);
  });

  test.each([
    ['primary', 'us-east-1.shop.example.com'],
    ['standby', 'us-west-2.shop.example.com'],
  ])(
    'checks the %s region over HTTPS at /health/ready through its own name, with SNI, every 10 s, failing after 3, from eight regions',
    (_, fqdn) => {
      const [, check] = healthCheckOf(fqdn);
      expect(check.Properties.HealthCheckConfig).toEqual({
        Type: 'HTTPS',
        FullyQualifiedDomainName: fqdn,
        Port: 443,
        ResourcePath: '/health/ready',
        EnableSNI: true,
        RequestInterval: 10,
        FailureThreshold: 3,
        Regions: [...HEALTH_CHECKER_REGIONS],
        MeasureLatency: false,
        Inverted: false,
      });
      expect(HEALTH_CHECKER_REGIONS.length).toBeGreaterThanOrEqual(3);
    },
  );

  test('PRIMARY aliases the primary region with its health check; SECONDARY the standby, evaluating target health', () => {
    const records = resourcesOf(dns, 'AWS::Route53::RecordSet').map(([, r]) => r.Properties);
    expect(records).toHaveLength(2);
    const [primaryCheck] = healthCheckOf('us-east-1.shop.example.com');
    const [standbyCheck] = healthCheckOf('us-west-2.shop.example.com');
    const base = { Name: 'shop.example.com.', Type: 'A', HostedZoneId: 'Z0123456789EXAMPLE' };
    expect(records).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          ...base,
          Failover: 'PRIMARY',
          SetIdentifier: 'primary',
          HealthCheckId: { Ref: primaryCheck },
          AliasTarget: {
            DNSName: 'us-east-1.shop.example.com',
            HostedZoneId: 'Z0123456789EXAMPLE',
            EvaluateTargetHealth: true,
          },
        }),
        expect.objectContaining({
          ...base,
          Failover: 'SECONDARY',
          SetIdentifier: 'secondary',
          HealthCheckId: { Ref: standbyCheck },
          AliasTarget: {
            DNSName: 'us-west-2.shop.example.com',
            HostedZoneId: 'Z0123456789EXAMPLE',
            EvaluateTargetHealth: true,
          },
        }),
      ]),
    );
    // Aliases have no TTL of their own: they take the aliased record's
    expect(records.map((r) => r.TTL)).toEqual([undefined, undefined]);
  });

  test.each([
    ['primary', () => primary, () => stacks.primary],
    ['standby', () => standby, () => stacks.standby!],
  ])(
    'the %s region defines the aliased name, an alias to its load balancer that evaluates its health',
    (_, template, stack) => {
      const name = (stack() as RegionalStack).loadBalancer.regionalDomainName;
      const [alb] = resourcesOf(template(), 'AWS::ElasticLoadBalancingV2::LoadBalancer')[0];
      template().hasResourceProperties('AWS::Route53::RecordSet', {
        Name: `${name}.`,
        Type: 'A',
        HostedZoneId: 'Z0123456789EXAMPLE',
        AliasTarget: {
          DNSName: Match.objectLike({ 'Fn::Join': ['', ['dualstack.', { 'Fn::GetAtt': [alb, 'DNSName'] }]] }),
          HostedZoneId: { 'Fn::GetAtt': [alb, 'CanonicalHostedZoneID'] },
          EvaluateTargetHealth: true,
        },
      });
      // ...and it is the name the DNS stack's health check and record use
      healthCheckOf(name);
    },
  );

  test('an alarm per health check on HealthCheckStatus, in us-east-1, notifying a topic there (alarm and OK)', () => {
    const topics = Object.keys(dns.findResources('AWS::SNS::Topic'));
    expect(topics).toHaveLength(1);
    const alarms = resourcesOf(dns, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const checks = [
      healthCheckOf('us-east-1.shop.example.com')[0],
      healthCheckOf('us-west-2.shop.example.com')[0],
    ];
    expect(alarms.map((a) => a.Dimensions)).toEqual(
      checks.map((check) => [{ Name: 'HealthCheckId', Value: { Ref: check } }]),
    );
    for (const alarm of alarms) {
      expect(alarm).toMatchObject({
        Namespace: 'AWS/Route53',
        MetricName: 'HealthCheckStatus',
        Statistic: 'Minimum',
        Period: 60,
        ComparisonOperator: 'LessThanThreshold',
        Threshold: 1,
        TreatMissingData: 'breaching',
        AlarmActions: [{ Ref: topics[0] }],
        OKActions: [{ Ref: topics[0] }],
      });
      expect(alarm.AlarmDescription).toMatch(/Runbook: docs\/runbooks\/region-failover\.md$/);
    }
  });

  test('the alarm topic lets CloudWatch publish and encrypt, for this account only', () => {
    const [topic] = Object.keys(dns.findResources('AWS::SNS::Topic'));
    dns.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topic }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } },
          }),
        ]),
      },
    });
    dns.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
  });

  test('has no finding in any pack, the wiring pack included', () => {
    const here = findings.filter((f) => f.paths.some((p) => p.startsWith('ResilientShop-DnsFailover/')));
    expect(here.map((f) => `${f.plugin} ${f.rule} at ${f.paths.join(', ')}`)).toEqual([]);
  });

  test('the failover time read from the templates (interval x threshold + TTL) is the one docs/failover.md gives', () => {
    // GIVEN the synthesized cloud assembly
    const report = failoverTimeOf(readCloudAssembly(outdir));
    expect(report).toMatchObject({
      name: 'shop.example.com',
      healthCheck: { fqdn: 'us-east-1.shop.example.com', intervalSeconds: 10, failureThreshold: 3 },
      detectionSeconds: 30,
      ttlSeconds: LOAD_BALANCER_ALIAS_TTL.toSeconds(),
      totalSeconds: 30 + LOAD_BALANCER_ALIAS_TTL.toSeconds(),
    });
    // WHEN the script prints it for that assembly
    const run = spawnSync('npx', ['tsx', 'scripts/failover-time.ts', outdir], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    const printed = run.stdout.split('\n')[0];
    expect(printed).toBe(formatFailoverTime(report));
    // THEN the docs quote that line
    expect(readFileSync(join(ROOT, 'docs', 'failover.md'), 'utf8')).toContain(printed);
  });
});

describe('DnsFailoverStack elsewhere', () => {
  test('where ingress is restricted, both load balancers admit every Route 53 health-checker range on 443', () => {
    // GIVEN a config whose load balancers admit one office range only
    const restricted = buildTestApp(configWith({ allowedIngressCidrs: ['203.0.113.0/24'] }));
    // Read from the written templates: this test is about the security group, not the packs.
    const written = synthFindings(restricted.app).outdir;
    for (const stack of [restricted.stacks.primary, restricted.stacks.standby!]) {
      const template = Template.fromJSON(
        JSON.parse(readFileSync(join(written, stack.templateFile), 'utf8')) as Json,
      );
      const albGroup = stack.getLogicalId(stack.securityGroups.loadBalancer.node.defaultChild as never);
      const admitted = new Set<string>();
      for (const [, rule] of resourcesOf(template, 'AWS::EC2::SecurityGroupIngress')) {
        const p = rule.Properties;
        if (
          JSON.stringify(p.GroupId) === JSON.stringify({ 'Fn::GetAtt': [albGroup, 'GroupId'] }) &&
          p.FromPort === 443
        ) {
          admitted.add(p.CidrIp);
        }
      }
      const inline = Object.values(template.findResources('AWS::EC2::SecurityGroup'))
        .filter((g) => g === template.toJSON().Resources[albGroup])
        .flatMap((g) => (g.Properties.SecurityGroupIngress ?? []) as Json[])
        .filter((r) => r.FromPort === 443)
        .map((r) => r.CidrIp as string);
      for (const cidr of inline) admitted.add(cidr);
      // THEN the health checks reach /health/ready instead of failing at the security group
      expect(ROUTE53_HEALTH_CHECKER_CIDRS.filter((cidr) => !admitted.has(cidr))).toEqual([]);
      expect(admitted.has('203.0.113.0/24')).toBe(true);
    }
  });

  test('without a standby region (config/lean.json) there is no DNS failover stack', () => {
    const lean = buildTestApp(shippedConfig('lean'));
    expect(lean.stacks.dnsFailover).toBeUndefined();
    expect(lean.app.node.children.filter((c) => c instanceof DnsFailoverStack)).toEqual([]);
  });
});
