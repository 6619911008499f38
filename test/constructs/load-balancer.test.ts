import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import {
  ELB_LOG_DELIVERY_PRINCIPAL,
  LoadBalancer,
  MANAGED_RULE_GROUPS,
  TLS_POLICY,
  vpcEgressCidrsToAdmit,
} from '../../lib/constructs/load-balancer';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { buildTestApp, configWith, rawConfig, shippedConfig } from '../helpers/app';
import { ingressGraph } from '../helpers/ingress-graph';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const production = buildTestApp(shippedConfig('default')).stacks;
const lean = buildTestApp(shippedConfig('lean')).stacks;
const primary = Template.fromStack(production.primary);
const leanPrimary = Template.fromStack(lean.primary);
const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

function albAttributes(template: Template): Record<string, string> {
  const alb = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer'))[0];
  return Object.fromEntries(
    (alb.Properties.LoadBalancerAttributes as { Key: string; Value: string }[]).map((a) => [a.Key, a.Value]),
  );
}

describe('certificate', () => {
  test('is DNS-validated in the configured zone for the public and the regional name, so ACM renews it', () => {
    primary.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'shop.example.com',
      SubjectAlternativeNames: ['us-east-1.shop.example.com'],
      ValidationMethod: 'DNS',
      DomainValidationOptions: Match.arrayWith([
        { DomainName: 'shop.example.com', HostedZoneId: 'Z0123456789EXAMPLE' },
        { DomainName: 'us-east-1.shop.example.com', HostedZoneId: 'Z0123456789EXAMPLE' },
      ]),
    });
  });

  test('the regional name is an alias of the load balancer (the failover health checks call it)', () => {
    primary.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'us-east-1.shop.example.com.',
      Type: 'A',
      HostedZoneId: 'Z0123456789EXAMPLE',
      AliasTarget: Match.objectLike({ DNSName: Match.anyValue() }),
    });
  });
});

describe('load balancer', () => {
  test('is internet-facing over the public subnets of every AZ', () => {
    const alb = Object.values(primary.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer'))[0]
      .Properties;
    expect(alb.Scheme).toBe('internet-facing');
    const publicSubnets = production.primary.network.vpc.publicSubnets.map((s) => ({
      Ref: id(production.primary, s),
    }));
    expect(alb.Subnets).toEqual(publicSubnets);
    expect(publicSubnets).toHaveLength(3);
  });

  test('drops invalid header fields, uses the strictest desync mitigation and keeps WAF fail-closed', () => {
    expect(albAttributes(primary)).toMatchObject({
      'routing.http.drop_invalid_header_fields.enabled': 'true',
      'routing.http.desync_mitigation_mode': 'strictest',
      'waf.fail_open.enabled': 'false',
      'idle_timeout.timeout_seconds': '60',
      'client_keep_alive.seconds': '300',
    });
  });

  test('has deletion protection in production and not in lean', () => {
    expect(albAttributes(primary)['deletion_protection.enabled']).toBe('true');
    expect(albAttributes(leanPrimary)['deletion_protection.enabled']).toBe('false');
  });

  test('has ARC zonal shift enabled', () => {
    expect(albAttributes(primary)['zonal_shift.config.enabled']).toBe('true');
    expect(albAttributes(leanPrimary)['zonal_shift.config.enabled']).toBe('true');
  });

  test('443 uses the current post-quantum TLS 1.3/1.2 policy AWS recommends (2025-09), with the ACM certificate, and forwards to the fleet', () => {
    primary.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      SslPolicy: TLS_POLICY,
      Certificates: [{ CertificateArn: { Ref: Match.stringLikeRegexp('Certificate') } }],
      DefaultActions: [
        {
          Type: 'forward',
          TargetGroupArn: { Ref: id(production.primary, production.primary.fleet.targetGroup) },
        },
      ],
    });
    expect(TLS_POLICY).toMatch(/^ELBSecurityPolicy-TLS13-1-2-/);
    // the policy "Security policies for your Application Load Balancer" recommends
    expect(TLS_POLICY).toBe('ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09');
  });

  test('80 has one action, a permanent redirect to https on 443, and forwards nothing', () => {
    const listeners = Object.values(primary.findResources('AWS::ElasticLoadBalancingV2::Listener')).filter(
      (l) => l.Properties.Port === 80,
    );
    expect(listeners).toHaveLength(1);
    expect(listeners[0].Properties.DefaultActions).toEqual([
      { Type: 'redirect', RedirectConfig: { Port: '443', Protocol: 'HTTPS', StatusCode: 'HTTP_301' } },
    ]);
    primary.resourceCountIs('AWS::ElasticLoadBalancingV2::ListenerRule', 0);
  });
});

describe('access logs', () => {
  const stack = production.primary;
  const bucketId = id(stack, stack.loadBalancer.accessLogBucket);
  const bucket = () => primary.toJSON().Resources[bucketId] as Json;

  test('go to the access-log bucket under alb/', () => {
    expect(albAttributes(primary)).toMatchObject({
      'access_logs.s3.enabled': 'true',
      'access_logs.s3.prefix': 'alb',
    });
  });

  test('the bucket is encrypted (SSE-S3, the only kind ELB writes to), versioned, private and expires logs', () => {
    expect(bucket().Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: [expect.objectContaining({ ExpirationInDays: 365, Status: 'Enabled' })],
      },
    });
    expect(bucket().DeletionPolicy).toBe('Retain');
  });

  test('the bucket policy is TLS-only and lets the regional ELB account and the log-delivery service write AWSLogs/<account>/ only', () => {
    const policy = Object.values(primary.findResources('AWS::S3::BucketPolicy')).find(
      (p) => p.Properties.Bucket.Ref === bucketId,
    )!;
    const statements = policy.Properties.PolicyDocument.Statement as Json[];
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    const write = statements.find((s) => s.Sid === 'AllowElbAccessLogDelivery')!;
    expect(write.Action).toBe('s3:PutObject');
    // us-east-1's ELB account, and the service principal AWS documents for every region
    expect(JSON.stringify(write.Principal)).toContain('arn:aws:iam::127311923021:root');
    expect(write.Principal.Service).toBe(ELB_LOG_DELIVERY_PRINCIPAL);
    expect(JSON.stringify(write.Resource)).toContain('/alb/AWSLogs/111111111111/*');
  });

  test('the load balancer is created after the policy (ELB checks it may write when logging is turned on)', () => {
    const alb = Object.values(primary.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer'))[0];
    expect(alb.DependsOn).toContain(id(stack, stack.loadBalancer.accessLogBucket.policy!));
  });
});

describe('web ACL', () => {
  const acl = () => Object.values(primary.findResources('AWS::WAFv2::WebACL'))[0].Properties;

  test('blocks an IP over the configured rate, then applies IP reputation, known bad inputs and the common rule set', () => {
    expect(acl().Scope).toBe('REGIONAL');
    expect(acl().DefaultAction).toEqual({ Allow: {} });
    const rules = acl().Rules as Json[];
    expect(rules.map((r) => r.Name)).toEqual(['RateLimitPerIp', ...MANAGED_RULE_GROUPS]);
    expect(rules[0]).toMatchObject({
      Action: { Block: {} },
      Statement: { RateBasedStatement: { Limit: 2000, AggregateKeyType: 'IP', EvaluationWindowSec: 300 } },
    });
    for (const rule of rules.slice(1)) {
      expect(rule.Statement.ManagedRuleGroupStatement.VendorName).toBe('AWS');
      expect(rule.OverrideAction).toEqual({ None: {} });
    }
  });

  test('takes its rate limit from config', () => {
    const raw = rawConfig();
    const template = Template.fromStack(
      buildTestApp(configWith({ waf: { ...(raw.waf as Json), ipRateLimit: 500 } as never })).stacks.primary,
    );
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Rules: Match.arrayWith([
        Match.objectLike({ Statement: { RateBasedStatement: Match.objectLike({ Limit: 500 }) } }),
      ]),
    });
  });

  test('is associated with the load balancer', () => {
    primary.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      ResourceArn: { Ref: id(production.primary, production.primary.loadBalancer.loadBalancer) },
    });
  });

  test('logs to a KMS-encrypted aws-waf-logs- group that the log-delivery service may write, without the Authorization header', () => {
    const stack = production.primary;
    const logGroup = primary.toJSON().Resources[id(stack, stack.loadBalancer.wafLogGroup)].Properties;
    expect(logGroup.LogGroupName).toMatch(/^aws-waf-logs-/);
    expect(logGroup.KmsKeyId).toEqual({ 'Fn::GetAtt': [expect.any(String), 'Arn'] });
    const logging = Object.values(primary.findResources('AWS::WAFv2::LoggingConfiguration'))[0].Properties;
    // WAF refuses the group's Arn attribute (it ends in ":*"): the plain group ARN it is
    expect(logging.LogDestinationConfigs).toEqual([
      `arn:aws:logs:us-east-1:111111111111:log-group:${logGroup.LogGroupName}`,
    ]);
    expect(logging.RedactedFields).toEqual([{ SingleHeader: { Name: 'authorization' } }]);
    const policy = Object.values(primary.findResources('AWS::Logs::ResourcePolicy'))
      .map((p) => JSON.parse(p.Properties.PolicyDocument))
      .find((doc) => JSON.stringify(doc).includes(logGroup.LogGroupName))!;
    expect(policy.Statement).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'delivery.logs.amazonaws.com' },
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: `arn:aws:logs:us-east-1:111111111111:log-group:${logGroup.LogGroupName}:log-stream:*`,
        Condition: expect.objectContaining({ StringEquals: { 'aws:SourceAccount': '111111111111' } }),
      }),
    ]);
    // the key lets CloudWatch Logs of the region encrypt the group
    const keyId = logGroup.KmsKeyId['Fn::GetAtt'][0];
    expect(JSON.stringify(primary.toJSON().Resources[keyId].Properties.KeyPolicy)).toContain(
      'logs.us-east-1.amazonaws.com',
    );
  });
});

describe("the VPC's own callers of the public name (the certificate probe, through the NAT gateways)", () => {
  const natRules = (stack: RegionalStack) => {
    const template = Template.fromStack(stack);
    const alb = id(stack, stack.securityGroups.loadBalancer);
    const list = stack.loadBalancer.vpcEgressPrefixList;
    const peer = list && `prefix-list:${JSON.stringify(stack.resolve(list.attrPrefixListId))}`;
    return {
      template,
      alb,
      list,
      peer,
      rules: ingressGraph(template).filter((e) => e.to === alb && e.from === peer),
    };
  };

  test("lean (ingress restricted to 203.0.113.0/24): the NAT gateway's Elastic IP reaches the load balancer on 443, and on 443 only", () => {
    // GIVEN the lean config, whose allow list does not cover the VPC's NAT gateway
    const stack = lean.primary;
    // WHEN its template is synthesized
    const { template, alb, list, peer, rules } = natRules(stack);
    // THEN a prefix list holds each NAT gateway's Elastic IP (resolved at deploy) as a /32
    expect(list).toBeDefined();
    const eips = Object.keys(template.findResources('AWS::EC2::EIP'));
    expect(eips).toHaveLength(1);
    const props = template.toJSON().Resources[stack.getLogicalId(list!)].Properties;
    expect(props).toMatchObject({ AddressFamily: 'IPv4', MaxEntries: 1 });
    expect(props.Entries).toEqual(
      eips.map((eip, i) => ({
        Cidr: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [eip, 'PublicIp'] }, '/32']] },
        Description: `NAT gateway ${i + 1}`,
      })),
    );
    // AND the load balancer's group admits the list on 443, never on 80
    expect(rules).toEqual([{ to: alb, from: peer, protocol: 'tcp', fromPort: 443, toPort: 443 }]);
  });

  test('production (open to the internet): no prefix list, no extra rule; 0.0.0.0/0 already admits the NAT gateways', () => {
    const stack = production.primary;
    expect(stack.network.natGatewayPublicIps).toHaveLength(3);
    expect(stack.loadBalancer.vpcEgressCidrs).toEqual([]);
    expect(stack.loadBalancer.vpcEgressPrefixList).toBeUndefined();
    primary.resourceCountIs('AWS::EC2::PrefixList', 0);
  });

  test('a restricted production config admits all three NAT gateways through one rule', () => {
    const stack = buildTestApp(configWith({ allowedIngressCidrs: ['203.0.113.0/24'] })).stacks.primary;
    const { template, list, rules } = natRules(stack);
    expect(template.toJSON().Resources[stack.getLogicalId(list!)].Properties.Entries).toHaveLength(3);
    expect(rules).toHaveLength(1);
  });

  test('a literal address is admitted only when no allowed CIDR covers it; a deploy-time address whenever the list is not open to all', () => {
    expect(vpcEgressCidrsToAdmit(['198.51.100.7'], ['198.51.100.0/24'])).toEqual([]);
    expect(vpcEgressCidrsToAdmit(['198.51.100.7'], ['203.0.113.0/24'])).toEqual(['198.51.100.7/32']);
    expect(vpcEgressCidrsToAdmit(['198.51.100.7'], ['0.0.0.0/0'])).toEqual([]);
    const stack = new Stack(new App(), 'Tokens', { env: { account: '111111111111', region: 'us-east-1' } });
    const eip = new ec2.CfnEIP(stack, 'Eip');
    expect(vpcEgressCidrsToAdmit([eip.attrPublicIp], ['203.0.113.0/24'])).toHaveLength(1);
    expect(vpcEgressCidrsToAdmit([eip.attrPublicIp], ['0.0.0.0/0'])).toEqual([]);
  });
});

describe('zonal autoshift', () => {
  test('production: enabled on the load balancer with the serving-impaired composite as the practice-run outcome alarm', () => {
    const stack = production.primary;
    primary.hasResourceProperties('AWS::ARCZonalShift::ZonalAutoshiftConfiguration', {
      ResourceIdentifier: { Ref: id(stack, stack.loadBalancer.loadBalancer) },
      ZonalAutoshiftStatus: 'ENABLED',
      PracticeRunConfiguration: {
        OutcomeAlarms: [
          {
            Type: 'CLOUDWATCH',
            AlarmIdentifier: { 'Fn::GetAtt': [id(stack, stack.fleetAlarms.servingImpaired), 'Arn'] },
          },
        ],
      },
    });
  });

  test('production: practice runs do not start while an AZ is short of healthy targets (the capacity-short composite blocks them)', () => {
    const stack = production.primary;
    const config = Object.values(primary.findResources('AWS::ARCZonalShift::ZonalAutoshiftConfiguration'))[0];
    expect(config.Properties.PracticeRunConfiguration.BlockingAlarms).toEqual([
      {
        Type: 'CLOUDWATCH',
        AlarmIdentifier: { 'Fn::GetAtt': [id(stack, stack.fleetAlarms.capacityShort), 'Arn'] },
      },
    ]);
  });

  test('the load balancer is an ARC managed resource (zonal shift attribute on) and its target group keeps cross-zone load balancing, which ARC supports for ALBs', () => {
    expect(albAttributes(primary)['zonal_shift.config.enabled']).toBe('true');
    const tg = Object.values(primary.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))[0];
    const attributes = (tg.Properties.TargetGroupAttributes as { Key: string; Value: string }[]).map(
      (a) => a.Key,
    );
    expect(attributes).not.toContain('load_balancing.cross_zone.enabled');
  });

  test('lean: not enabled (practice runs take one of its two AZs away weekly)', () => {
    leanPrimary.resourceCountIs('AWS::ARCZonalShift::ZonalAutoshiftConfiguration', 0);
  });
});

describe('LoadBalancer validation', () => {
  const fixture = () => {
    const stack = new Stack(new App(), 'Fixture', { env: { account: '111111111111', region: 'us-east-1' } });
    const vpc = new ec2.Vpc(stack, 'Vpc', { availabilityZones: ['us-east-1a', 'us-east-1b'] });
    return {
      stack,
      props: {
        vpc,
        securityGroup: new ec2.SecurityGroup(stack, 'Sg', { vpc, allowAllOutbound: false }),
        allowedIngressCidrs: ['0.0.0.0/0'],
        domainName: 'shop.example.com',
        hostedZone: route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', {
          hostedZoneId: 'Z0123456789EXAMPLE',
          zoneName: 'example.com',
        }),
      },
    };
  };

  test('refuses a WAF rate limit AWS WAF would refuse', () => {
    const { stack, props } = fixture();
    expect(() => new LoadBalancer(stack, 'Lb', { ...props, wafRateLimit: 5 })).toThrow(
      /wafRateLimit 5 is outside 10-2000000000/,
    );
  });

  test('refuses a zero-day log retention', () => {
    const { stack, props } = fixture();
    expect(() => new LoadBalancer(stack, 'Lb', { ...props, accessLogRetentionDays: 0 })).toThrow(
      /accessLogRetentionDays must be a whole number of days >= 1, got 0/,
    );
  });

  test('enables autoshift once only', () => {
    const { stack, props } = fixture();
    const lb = new LoadBalancer(stack, 'Lb', props);
    const alarm = lb
      .metricWafBlockedRequests()
      .createAlarm(stack, 'A', { threshold: 1, evaluationPeriods: 1 });
    lb.enableZonalAutoshift(alarm);
    expect(() => lb.enableZonalAutoshift(alarm)).toThrow(/enableZonalAutoshift was already called/);
  });

  test("refuses more blocking alarms than CloudFormation's schema takes (one)", () => {
    const { stack, props } = fixture();
    const lb = new LoadBalancer(stack, 'Lb', props);
    const alarms = Array.from({ length: 2 }, (_, i) =>
      lb.metricWafBlockedRequests().createAlarm(stack, `A${i}`, { threshold: 1, evaluationPeriods: 1 }),
    );
    expect(() => lb.enableZonalAutoshift(alarms[0], alarms)).toThrow(
      /at most 1 blocking alarm, got 2: combine them in a composite alarm/,
    );
  });
});
