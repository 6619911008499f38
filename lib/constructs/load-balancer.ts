import { ArnFormat, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as arczonalshift from 'aws-cdk-lib/aws-arczonalshift';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';
import { healthCheckerCidrsToAdmit } from '../fleet/route53-health-checkers';
import { cidrContains } from '../nag/network';
import { allowLogsToUseKey } from '../kms';

/** The service principal that delivers ALB access logs in every region, as AWS now documents. */
export const ELB_LOG_DELIVERY_PRINCIPAL = 'logdelivery.elasticloadbalancing.amazonaws.com';

/** The prefix AWS WAF requires of a CloudWatch Logs log group it logs to. */
export const WAF_LOG_GROUP_PREFIX = 'aws-waf-logs-';

/**
 * The TLS policy of the HTTPS listener: TLS 1.3 and 1.2 only, TLS 1.2 restricted to
 * forward-secret AES-GCM suites, with the hybrid post-quantum key exchange offered to
 * clients that support it.
 */
export const TLS_POLICY = elbv2.SslPolicy.TLS13_12_RES_PQ;

/** The AWS managed rule groups of the web ACL, in evaluation order after the rate rule. */
export const MANAGED_RULE_GROUPS = [
  'AWSManagedRulesAmazonIpReputationList',
  'AWSManagedRulesKnownBadInputsRuleSet',
  'AWSManagedRulesCommonRuleSet',
] as const;

/**
 * The `/32` CIDRs of the VPC's egress addresses that the allowed CIDRs do not already
 * cover. An address that is a token (an Elastic IP allocated at deploy) is covered only by
 * an allow list open to all of IPv4; a literal address is checked against every CIDR.
 */
export function vpcEgressCidrsToAdmit(
  egressIps: readonly string[],
  allowedIngressCidrs: readonly string[],
): string[] {
  const openToAll = allowedIngressCidrs.includes('0.0.0.0/0');
  return egressIps
    .map((ip) => `${ip}/32`)
    .filter(
      (cidr) =>
        !openToAll &&
        (Token.isUnresolved(cidr) || !allowedIngressCidrs.some((allowed) => cidrContains(allowed, cidr))),
    );
}

/** Properties of {@link LoadBalancer}. */
export interface LoadBalancerProps {
  /** The VPC whose public subnets hold the load balancer. */
  readonly vpc: ec2.IVpc;

  /** The load balancer's security group (443 and 80 from the allowed CIDRs). */
  readonly securityGroup: ec2.ISecurityGroup;

  /**
   * The CIDRs the security group admits. When they do not cover Route 53's health
   * checkers, their ranges are admitted on 443 as well, so DNS failover health checks
   * reach `/health/ready` instead of failing on their own.
   */
  readonly allowedIngressCidrs: readonly string[];

  /**
   * The public IPv4 addresses traffic from this VPC leaves from: its NAT gateways'
   * Elastic IPs (`Network.natGatewayPublicIps`). Callers inside the VPC that reach the
   * load balancer by its public name (the certificate probe) arrive from these addresses.
   * When `allowedIngressCidrs` does not cover them, they are admitted on 443 (and only
   * 443) through a prefix list, so a restricted allow list does not make the probe fail
   * on its own.
   *
   * @default - none: in-VPC callers of the public name are admitted only if `allowedIngressCidrs` covers them
   */
  readonly vpcEgressIps?: readonly string[];

  /** The checkout's public name (the certificate's main name). */
  readonly domainName: string;

  /** The hosted zone of `domainName`; DNS validation records and the regional alias go there. */
  readonly hostedZone: route53.IHostedZone;

  /**
   * This region's own name, on the certificate too, with an alias record to the load
   * balancer: the name the DNS failover health checks call.
   *
   * @default `<region>.<domainName>`
   */
  readonly regionalDomainName?: string;

  /**
   * Requests one client IP may send in 5 minutes before the web ACL blocks it.
   *
   * @default 2000 - the WAF console's default: a shopper makes a few checkout calls per
   * minute, so even a shared NAT of a hundred shoppers stays below it, while one client
   * sending 7 requests per second is blocked
   */
  readonly wafRateLimit?: number;

  /**
   * Whether the load balancer can be deleted only after turning this off.
   *
   * @default true
   */
  readonly deletionProtection?: boolean;

  /**
   * Days access logs are kept in the bucket.
   *
   * @default 365 - a year of evidence for a PCI DSS 10.7 review
   */
  readonly accessLogRetentionDays?: number;

  /**
   * How long WAF logs are kept.
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly wafLogRetention?: logs.RetentionDays;

  /**
   * What happens to the access-log bucket, the WAF log group and its key on stack deletion.
   *
   * @default RemovalPolicy.RETAIN - logs are audit evidence
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Tier 3, the front door: an internet-facing Application Load Balancer over the VPC's
 * public subnets with
 *
 * - an ACM certificate for the public and the regional name, validated through DNS in
 *   the hosted zone, so ACM renews it unattended;
 * - HTTPS on 443 with {@link TLS_POLICY}; port 80 only redirects to 443;
 * - invalid header fields dropped, strictest desync mitigation, deletion protection;
 * - access logs to an SSE-S3 encrypted, TLS-only, versioned bucket with a lifecycle,
 *   written by the regional ELB log-delivery account and by
 *   {@link ELB_LOG_DELIVERY_PRINCIPAL};
 * - zonal shift enabled (ARC), and {@link LoadBalancer.enableZonalAutoshift} for
 *   autoshift with a practice-run outcome alarm;
 * - a WAFv2 web ACL: a per-IP rate rule, then AWS's IP reputation list, known bad inputs
 *   and the common rule set, logging to a KMS-encrypted `aws-waf-logs-` group (the
 *   `Authorization` header redacted);
 * - an alias record `<region>.<domain>` for the failover health checks, and 443 open to
 *   Route 53's health checkers and to the VPC's own NAT gateways (the certificate probe)
 *   when the allowed CIDRs do not cover them.
 *
 * Add the listener's targets with `httpsListener.addTargetGroups` (the `Fleet` does).
 */
export class LoadBalancer extends Construct {
  /** The load balancer. */
  public readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  /** The HTTPS listener (443). */
  public readonly httpsListener: elbv2.ApplicationListener;
  /** The redirecting HTTP listener (80). */
  public readonly httpListener: elbv2.ApplicationListener;
  /** The DNS-validated certificate. */
  public readonly certificate: acm.Certificate;
  /** The access-log bucket. */
  public readonly accessLogBucket: s3.Bucket;
  /** The web ACL. */
  public readonly webAcl: wafv2.CfnWebACL;
  /** The web ACL's name (the `WebACL` dimension of its metrics). */
  public readonly webAclName: string;
  /** The log group WAF logs to. */
  public readonly wafLogGroup: logs.LogGroup;
  /** This region's own name, aliased to the load balancer. */
  public readonly regionalDomainName: string;
  /** The Route 53 health-checker ranges admitted on 443 (empty when the allowed CIDRs cover them). */
  public readonly healthCheckerCidrs: readonly string[];
  /** The VPC's own egress addresses admitted on 443, as `/32` CIDRs (empty when the allowed CIDRs cover them). */
  public readonly vpcEgressCidrs: readonly string[];
  /** The prefix list holding {@link vpcEgressCidrs}, admitted on 443 (only when there are some). */
  public readonly vpcEgressPrefixList?: ec2.CfnPrefixList;
  /** The zonal autoshift configuration, once {@link enableZonalAutoshift} ran. */
  public zonalAutoshift?: arczonalshift.CfnZonalAutoshiftConfiguration;

  constructor(scope: Construct, id: string, props: LoadBalancerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const wafRateLimit = props.wafRateLimit ?? 2_000;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const retentionDays = props.accessLogRetentionDays ?? 365;
    this.regionalDomainName = props.regionalDomainName ?? `${stack.region}.${props.domainName}`;

    if (!Token.isUnresolved(wafRateLimit) && (wafRateLimit < 10 || wafRateLimit > 2_000_000_000)) {
      throw new Error(
        `LoadBalancer wafRateLimit ${wafRateLimit} is outside 10-2000000000, the range AWS WAF accepts`,
      );
    }
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new Error(
        `LoadBalancer accessLogRetentionDays must be a whole number of days >= 1, got ${retentionDays}`,
      );
    }
    if (Token.isUnresolved(stack.region)) {
      throw new Error(
        'LoadBalancer needs a stack with an explicit region (the ELB log-delivery account is per region)',
      );
    }

    this.certificate = new acm.Certificate(this, 'Certificate', {
      domainName: props.domainName,
      subjectAlternativeNames: [this.regionalDomainName],
      validation: acm.CertificateValidation.fromDns(props.hostedZone),
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroup: props.securityGroup,
      deletionProtection: props.deletionProtection ?? true,
      dropInvalidHeaderFields: true,
      desyncMitigationMode: elbv2.DesyncMitigationMode.STRICTEST,
      // The service keeps idle connections 72 s (HTTP_KEEP_ALIVE_TIMEOUT_MS), longer than
      // this, so the load balancer always closes an idle connection first.
      idleTimeout: Duration.seconds(60),
      // Clients reconnect, and resolve DNS again, at least every 5 minutes: a zonal shift
      // takes their traffic out of an AZ within that time, as ARC recommends.
      clientKeepAlive: Duration.seconds(300),
    });
    this.loadBalancer.setAttribute('zonal_shift.config.enabled', 'true');
    // Written out although it is the default: a request the web ACL cannot inspect is refused.
    this.loadBalancer.setAttribute('waf.fail_open.enabled', 'false');

    this.httpsListener = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [this.certificate],
      sslPolicy: TLS_POLICY,
      open: false,
    });
    this.httpListener = this.loadBalancer.addRedirect({
      sourcePort: 80,
      sourceProtocol: elbv2.ApplicationProtocol.HTTP,
      targetPort: 443,
      targetProtocol: elbv2.ApplicationProtocol.HTTPS,
      open: false,
    });
    // aws-cdk-lib tags listeners, but cfn-lint 1.51's schema has no Tags on
    // AWS::ElasticLoadBalancingV2::Listener (E3002). A listener's cost and ownership are
    // its load balancer's, which keeps its tags.
    for (const listener of [this.httpsListener, this.httpListener]) {
      (listener.node.defaultChild as elbv2.CfnListener).addPropertyDeletionOverride('Tags');
    }

    acknowledge(
      this.httpListener,
      ['NIST.800.53.R5-ELBv2ACMCertificateRequired', 'PCI.DSS.321-ELBv2ACMCertificateRequired'],
      'Port 80 only answers a 301 redirect to https on 443 and forwards nothing to a target; the 443 listener carries every request with the ACM certificate.',
    );

    this.healthCheckerCidrs = healthCheckerCidrsToAdmit(props.allowedIngressCidrs);
    for (const cidr of this.healthCheckerCidrs) {
      props.securityGroup.addIngressRule(
        ec2.Peer.ipv4(cidr),
        ec2.Port.tcp(443),
        `HTTPS from Route 53 health checkers (${cidr})`,
      );
    }
    this.vpcEgressCidrs = vpcEgressCidrsToAdmit(props.vpcEgressIps ?? [], props.allowedIngressCidrs);
    if (this.vpcEgressCidrs.length > 0) {
      // A customer managed prefix list rather than one CIDR rule per address: Elastic IPs
      // are known only at deploy, and a rule whose CIDR is an intrinsic cannot be checked
      // by the compliance packs. The list counts its maximum entries against the group's
      // rule quota, as the same number of CIDR rules would.
      this.vpcEgressPrefixList = new ec2.CfnPrefixList(this, 'VpcEgressPrefixList', {
        prefixListName: `${stack.stackName}-vpc-egress`,
        addressFamily: 'IPv4',
        maxEntries: this.vpcEgressCidrs.length,
        entries: this.vpcEgressCidrs.map((cidr, i) => ({ cidr, description: `NAT gateway ${i + 1}` })),
      });
      props.securityGroup.addIngressRule(
        ec2.Peer.prefixList(this.vpcEgressPrefixList.attrPrefixListId),
        ec2.Port.tcp(443),
        "HTTPS from this VPC's NAT gateways (in-VPC callers of the public name: the certificate probe)",
      );
    }

    this.accessLogBucket = this.createAccessLogBucket(retentionDays, removalPolicy);
    const webAcl = this.createWebAcl(wafRateLimit, props.wafLogRetention, removalPolicy);
    this.webAcl = webAcl.acl;
    this.webAclName = webAcl.name;
    this.wafLogGroup = webAcl.logGroup;

    new route53.ARecord(this, 'RegionalRecord', {
      zone: props.hostedZone,
      recordName: this.regionalDomainName,
      // Evaluated, so the SECONDARY failover record aliasing this name inherits the load
      // balancer's health (no healthy target, no answer). A simple record is answered
      // either way: the health checks and the certificate probe still reach it.
      target: route53.RecordTarget.fromAlias(
        new route53Targets.LoadBalancerTarget(this.loadBalancer, { evaluateTargetHealth: true }),
      ),
      comment: "This region's own name: what the DNS failover health checks call",
    });

    if (!(props.deletionProtection ?? true)) {
      acknowledge(
        this.loadBalancer,
        ['NIST.800.53.R5-ELBDeletionProtectionEnabled', 'PCI.DSS.321-ELBDeletionProtectionEnabled'],
        'deletionProtection is off only for the lean profile, whose disposable dev stacks must be deletable with cdk destroy; production keeps it on.',
      );
    }
  }

  /**
   * The bucket for access logs. ALB access logs support only SSE-S3, so the bucket uses
   * it instead of a customer managed key. Writers: the region's ELB log-delivery account
   * (regions from before August 2022) and {@link ELB_LOG_DELIVERY_PRINCIPAL} (every region),
   * on `AWSLogs/<account>/` only.
   */
  private createAccessLogBucket(retentionDays: number, removalPolicy: RemovalPolicy): s3.Bucket {
    const stack = Stack.of(this);
    const bucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [
        {
          id: 'ExpireAccessLogs',
          expiration: Duration.days(retentionDays),
          noncurrentVersionExpiration: Duration.days(7),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy,
    });
    const prefix = 'alb';
    const logObjects = bucket.arnForObjects(`${prefix}/AWSLogs/${stack.account}/*`);
    const elbAccount = RegionInfo.get(stack.region).elbv2Account;
    const writers: iam.IPrincipal[] = [
      ...(elbAccount ? [new iam.AccountPrincipal(elbAccount)] : []),
      new iam.ServicePrincipal(ELB_LOG_DELIVERY_PRINCIPAL),
    ];
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowElbAccessLogDelivery',
        principals: writers,
        actions: ['s3:PutObject'],
        resources: [logObjects],
      }),
    );
    this.loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
    this.loadBalancer.setAttribute('access_logs.s3.bucket', bucket.bucketName);
    this.loadBalancer.setAttribute('access_logs.s3.prefix', prefix);
    // ELB checks that it may write when the attribute is set: the policy must exist first.
    const lb = this.loadBalancer.node.defaultChild as elbv2.CfnLoadBalancer;
    lb.addResourceDependency(bucket.policy!.node.defaultChild as s3.CfnBucketPolicy);

    acknowledge(
      bucket,
      ['AwsSolutions-S1', 'NIST.800.53.R5-S3BucketLoggingEnabled', 'PCI.DSS.321-S3BucketLoggingEnabled'],
      'This bucket holds the load balancer access logs themselves; server access logs of a log bucket would need yet another log bucket; changes to the bucket and its policy are management events the account CloudTrail trail records (reads of objects are not: add S3 data events to the trail where that is required).',
    );
    acknowledge(
      bucket,
      ['NIST.800.53.R5-S3DefaultEncryptionKMS', 'PCI.DSS.321-S3DefaultEncryptionKMS'],
      'Elastic Load Balancing writes access logs only to buckets encrypted with SSE-S3 (AES-256); a customer managed KMS key makes log delivery fail.',
    );
    acknowledge(
      bucket,
      ['NIST.800.53.R5-S3BucketReplicationEnabled', 'PCI.DSS.321-S3BucketReplicationEnabled'],
      'Access logs describe traffic of this region only and lose their use with it; the standby region keeps its own load balancer logs in its own bucket.',
    );
    return bucket;
  }

  /** The web ACL, its association and its logging. */
  private createWebAcl(
    rateLimit: number,
    retention: logs.RetentionDays | undefined,
    removalPolicy: RemovalPolicy,
  ): { acl: wafv2.CfnWebACL; name: string; logGroup: logs.LogGroup } {
    const stack = Stack.of(this);
    const name = `${stack.stackName}-checkout`;
    const visibility = (metricName: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
      metricName,
    });
    const managed = (group: string, priority: number): wafv2.CfnWebACL.RuleProperty => ({
      name: group,
      priority,
      overrideAction: { none: {} },
      statement: { managedRuleGroupStatement: { vendorName: 'AWS', name: group } },
      visibilityConfig: visibility(group),
    });
    const acl = new wafv2.CfnWebACL(this, 'WebAcl', {
      name,
      description: 'Checkout load balancer: per-IP rate limit and AWS managed rule groups',
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility(name),
      rules: [
        {
          name: 'RateLimitPerIp',
          priority: 0,
          action: { block: {} },
          statement: {
            rateBasedStatement: { limit: rateLimit, aggregateKeyType: 'IP', evaluationWindowSec: 300 },
          },
          visibilityConfig: visibility('RateLimitPerIp'),
        },
        ...MANAGED_RULE_GROUPS.map((group, i) => managed(group, i + 1)),
      ],
    });
    new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
      resourceArn: this.loadBalancer.loadBalancerArn,
      webAclArn: acl.attrArn,
    });

    const key = new kms.Key(this, 'WafLogKey', {
      description: 'Encrypts the checkout load balancer WAF logs',
      enableKeyRotation: true,
      removalPolicy,
    });
    allowLogsToUseKey(key, 'AllowCloudWatchLogsForWafLogs');
    const logGroupName = `${WAF_LOG_GROUP_PREFIX}${stack.stackName}-checkout`;
    const logGroup = new logs.LogGroup(this, 'WafLogs', {
      logGroupName,
      encryptionKey: key,
      retention: retention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });
    // WAF delivers through CloudWatch Logs' vended-log channel; this is the resource policy
    // AWS documents for it, scoped to this group and this account. Written here so the
    // permission is in the template (AWS would otherwise add one on the fly, and a region
    // allows only 10 resource policies).
    const deliveryPolicy = new logs.ResourcePolicy(this, 'WafLogDeliveryPolicy', {
      resourcePolicyName: `${stack.stackName}-waf-log-delivery`,
      policyStatements: [
        new iam.PolicyStatement({
          sid: 'AWSLogDeliveryWrite',
          principals: [new iam.ServicePrincipal('delivery.logs.amazonaws.com')],
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [`${this.wafLogGroupArn(logGroupName)}:log-stream:*`],
          conditions: {
            StringEquals: { 'aws:SourceAccount': stack.account },
            ArnLike: {
              'aws:SourceArn': stack.formatArn({
                service: 'logs',
                resource: '*',
                arnFormat: ArnFormat.NO_RESOURCE_NAME,
              }),
            },
          },
        }),
      ],
    });
    const logging = new wafv2.CfnLoggingConfiguration(this, 'WafLogging', {
      resourceArn: acl.attrArn,
      // The group's ARN without the trailing `:*` that its Arn attribute carries: WAF refuses that form.
      logDestinationConfigs: [this.wafLogGroupArn(logGroupName)],
      // The admin routes' bearer token must not reach the logs.
      redactedFields: [{ singleHeader: { Name: 'authorization' } }],
    });
    logging.addResourceDependency(logGroup.node.defaultChild as logs.CfnLogGroup);
    logging.addResourceDependency(deliveryPolicy.node.defaultChild as logs.CfnResourcePolicy);
    return { acl, name, logGroup };
  }

  private wafLogGroupArn(logGroupName: string): string {
    return Stack.of(this).formatArn({
      service: 'logs',
      resource: 'log-group',
      resourceName: logGroupName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }

  /**
   * Lets AWS shift traffic away from an impaired AZ on its own (ARC zonal autoshift), with
   * weekly practice runs. A practice run fails, and is reported, when `outcomeAlarm` fires
   * during it; `blockingAlarms` (optional, at most one: CloudFormation's schema takes one,
   * so combine several in a composite alarm) keeps practice runs from starting, or ends one
   * in progress. The load balancer is an ARC managed resource once its
   * `zonal_shift.config.enabled` attribute is on (set in the constructor); ARC supports
   * zonal shift and autoshift for Application Load Balancers with cross-zone load
   * balancing on or off (ARC Developer Guide, "Supported resources"), so the target
   * groups keep the default, on. The alarms must be in the load balancer's region.
   */
  public enableZonalAutoshift(
    outcomeAlarm: cloudwatch.IAlarm,
    blockingAlarms: cloudwatch.IAlarm[] = [],
  ): arczonalshift.CfnZonalAutoshiftConfiguration {
    if (this.zonalAutoshift) throw new Error('LoadBalancer.enableZonalAutoshift was already called');
    // AWS::ARCZonalShift::ZonalAutoshiftConfiguration takes one outcome alarm and at most
    // one blocking alarm: combine several into a composite alarm.
    if (blockingAlarms.length > 1) {
      throw new Error(
        `LoadBalancer.enableZonalAutoshift: a practice run takes at most 1 blocking alarm, got ${blockingAlarms.length}: combine them in a composite alarm`,
      );
    }
    const condition = (alarm: cloudwatch.IAlarm) => ({ type: 'CLOUDWATCH', alarmIdentifier: alarm.alarmArn });
    this.zonalAutoshift = new arczonalshift.CfnZonalAutoshiftConfiguration(this, 'ZonalAutoshift', {
      resourceIdentifier: this.loadBalancer.loadBalancerArn,
      zonalAutoshiftStatus: 'ENABLED',
      practiceRunConfiguration: {
        outcomeAlarms: [condition(outcomeAlarm)],
        blockingAlarms: blockingAlarms.length > 0 ? blockingAlarms.map(condition) : undefined,
      },
    });
    return this.zonalAutoshift;
  }

  /** Requests blocked by the web ACL (all rules), per minute by default. */
  public metricWafBlockedRequests(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/WAFV2',
      metricName: 'BlockedRequests',
      dimensionsMap: { WebACL: this.webAclName, Region: Stack.of(this).region, Rule: 'ALL' },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(1),
      ...props,
    });
  }
}
