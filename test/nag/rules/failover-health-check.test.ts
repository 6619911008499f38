import { Stack } from 'aws-cdk-lib';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import { resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.failoverHealthCheck;
const ZONE = 'Z0123456789ABCDEFGHIJ';
const ALB_ZONE = 'Z35SXDOTRQ7X7K';

/** A failover A record for shop.example.com. */
function record(
  stack: Stack,
  id: string,
  failover: 'PRIMARY' | 'SECONDARY',
  health: Partial<route53.CfnRecordSetProps>,
): route53.CfnRecordSet {
  return new route53.CfnRecordSet(stack, id, {
    hostedZoneId: ZONE,
    name: 'shop.example.com',
    type: 'A',
    setIdentifier: failover.toLowerCase(),
    failover,
    ...health,
  });
}

const alias = (evaluateTargetHealth: boolean): route53.CfnRecordSet.AliasTargetProperty => ({
  dnsName: 'dualstack.shop-123.us-east-1.elb.amazonaws.com',
  hostedZoneId: ALB_ZONE,
  evaluateTargetHealth,
});

describe('FailoverHealthCheck: every failover record has a health signal', () => {
  test('a primary alias that does not evaluate target health, and a secondary without a check, are reported', () => {
    // GIVEN a failover pair Route 53 would consider healthy forever
    let primary!: route53.CfnRecordSet;
    let secondary!: route53.CfnRecordSet;
    const findings = resilienceFindings((stack) => {
      primary = record(stack, 'Primary', 'PRIMARY', { aliasTarget: alias(false) });
      secondary = record(stack, 'Secondary', 'SECONDARY', { resourceRecords: ['192.0.2.10'], ttl: '60' });
    });
    // THEN both records are reported
    expect(findings).toEqual(
      [`${RULE} at ${resourcePath(primary)}`, `${RULE} at ${resourcePath(secondary)}`].sort(),
    );
  });

  test('a health-checked primary and an alias secondary that evaluates target health pass', () => {
    const findings = resilienceFindings((stack) => {
      const check = new route53.CfnHealthCheck(stack, 'Check', {
        healthCheckConfig: {
          type: 'HTTPS',
          fullyQualifiedDomainName: 'primary.shop.example.com',
          resourcePath: '/health/ready',
        },
      });
      record(stack, 'Primary', 'PRIMARY', {
        aliasTarget: alias(false),
        healthCheckId: check.attrHealthCheckId,
      });
      record(stack, 'Secondary', 'SECONDARY', { aliasTarget: alias(true) });
    });
    expect(findings).toEqual([]);
  });

  test('records without a failover policy are not checked', () => {
    const findings = resilienceFindings((stack) => {
      new route53.CfnRecordSet(stack, 'Plain', {
        hostedZoneId: ZONE,
        name: 'shop.example.com',
        type: 'A',
        aliasTarget: alias(false),
      });
    });
    expect(findings).toEqual([]);
  });

  test('a record set group reports each failover record without a signal by its set identifier', () => {
    let group!: route53.CfnRecordSetGroup;
    const findings = resilienceFindings((stack) => {
      group = new route53.CfnRecordSetGroup(stack, 'Group', {
        hostedZoneId: ZONE,
        recordSets: [
          {
            name: 'shop.example.com',
            type: 'A',
            setIdentifier: 'us-east-1',
            failover: 'PRIMARY',
            aliasTarget: alias(true),
          },
          {
            name: 'shop.example.com',
            type: 'A',
            setIdentifier: 'us-west-2',
            failover: 'SECONDARY',
            aliasTarget: alias(false),
          },
        ],
      });
    });
    expect(findings).toEqual([`${RULE}[us-west-2] at ${resourcePath(group)}`]);
  });
});
