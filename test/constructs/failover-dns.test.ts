import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Lazy, Stack } from 'aws-cdk-lib';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as sns from 'aws-cdk-lib/aws-sns';
import { addCompliancePacks } from '../../lib/compliance';
import { FailoverDns, FailoverDnsProps, failoverTiming } from '../../lib/constructs/failover-dns';
import { newApp } from '../helpers/app';
import { synthFindings } from '../helpers/gates';

/** A FailoverDns in a bare stack of `region`, with props overridden. */
function failoverDns(region = 'us-east-1', overrides: Partial<FailoverDnsProps> = {}) {
  const app = newApp();
  const stack = new Stack(app, 'Dns', { env: { account: '111111111111', region } });
  const hostedZone = route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', {
    hostedZoneId: 'Z0123456789EXAMPLE',
    zoneName: 'example.com',
  });
  const build = () =>
    new FailoverDns(stack, 'FailoverDns', {
      hostedZone,
      domainName: 'shop.example.com',
      primary: { region: 'eu-west-1', regionalDomainName: 'eu-west-1.shop.example.com' },
      secondary: { region: 'eu-central-1', regionalDomainName: 'eu-central-1.shop.example.com' },
      ...overrides,
    });
  return { app, stack, hostedZone, build };
}

describe('FailoverDns', () => {
  test('detection is interval x threshold, and the failover time adds the TTL', () => {
    expect(failoverTiming(10, 3, 60)).toEqual({ detectionSeconds: 30, ttlSeconds: 60, totalSeconds: 90 });
    expect(failoverTiming(30, 3, 60)).toEqual({ detectionSeconds: 90, ttlSeconds: 60, totalSeconds: 150 });
    const { build } = failoverDns('us-east-1', {
      requestInterval: Duration.seconds(30),
      failureThreshold: 2,
    });
    expect(build().timing).toEqual({ detectionSeconds: 60, ttlSeconds: 60, totalSeconds: 120 });
  });

  test.each([
    [
      'outside us-east-1',
      'eu-west-1',
      {},
      /must be in us-east-1, got eu-west-1: Route 53 publishes health-check metrics only there/,
    ],
    [
      'a 20 s interval',
      'us-east-1',
      { requestInterval: Duration.seconds(20) },
      /requestInterval must be 10 or 30 seconds/,
    ],
    [
      'a threshold of 11',
      'us-east-1',
      { failureThreshold: 11 },
      /failureThreshold must be a whole number from 1 to 10, got 11/,
    ],
    [
      'two checker regions',
      'us-east-1',
      { checkerRegions: ['us-east-1', 'eu-west-1'] },
      /at least 3 checkerRegions/,
    ],
    [
      'a regional name outside the zone',
      'us-east-1',
      { secondary: { region: 'eu-central-1', regionalDomainName: 'eu-central-1.shop.example.org' } },
      /eu-central-1\.shop\.example\.org is not in hosted zone example\.com/,
    ],
    [
      'a token for a regional name (a cross-stack reference)',
      'us-east-1',
      {
        primary: { region: 'eu-west-1', regionalDomainName: Lazy.string({ produce: () => 'x.example.com' }) },
      },
      /must be a literal name, not a token/,
    ],
  ])('refuses %s', (_, region, overrides, message) => {
    expect(failoverDns(region, overrides as Partial<FailoverDnsProps>).build).toThrow(message);
  });

  test('its alarms notify the given topic; the wiring pack reports a topic CloudWatch may not publish to', () => {
    // GIVEN the packs and a TLS-only topic whose policy (alone) lets nobody publish
    const { app, stack, hostedZone } = failoverDns();
    addCompliancePacks(app);
    const topic = new sns.Topic(stack, 'Silent', { enforceSSL: true });
    const dns = new FailoverDns(stack, 'Wired', {
      hostedZone,
      domainName: 'shop.example.com',
      primary: { region: 'eu-west-1', regionalDomainName: 'eu-west-1.shop.example.com' },
      secondary: { region: 'eu-central-1', regionalDomainName: 'eu-central-1.shop.example.com' },
      alarmTopic: topic,
    });
    // WHEN synthesized
    const { outdir, findings } = synthFindings(app);
    // THEN both alarms notify the topic...
    const template = JSON.parse(readFileSync(join(outdir, stack.templateFile), 'utf8')) as {
      Resources: Record<string, { Properties: Record<string, unknown> }>;
    };
    const topicRef = { Ref: stack.getLogicalId(topic.node.defaultChild as never) };
    for (const alarm of dns.alarms) {
      const alarmProps = template.Resources[stack.getLogicalId(alarm.node.defaultChild as never)].Properties;
      expect(alarmProps.AlarmActions).toEqual([topicRef]);
      expect(alarmProps.OKActions).toEqual([topicRef]);
    }
    // ...and the wiring pack names both, since the topic's policy lets CloudWatch nothing
    const wiring = findings.filter((f) => f.rule.startsWith('ResilientShopWiring-TopicPublish'));
    expect(wiring.flatMap((f) => f.paths).sort()).toEqual([
      'Dns/Wired/PrimaryUnhealthy/Resource',
      'Dns/Wired/SecondaryUnhealthy/Resource',
    ]);
  });
});
