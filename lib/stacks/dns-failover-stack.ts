import { Stack, StackProps } from 'aws-cdk-lib';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { AppConfig } from '../config';
import { AlarmTopic } from '../constructs/alarm-topic';
import { FailoverDns, ROUTE53_METRICS_REGION } from '../constructs/failover-dns';
import { RegionalStack } from './regional-stack';

/** Properties of {@link DnsFailoverStack}. */
export interface DnsFailoverStackProps extends StackProps {
  /** The validated deployment config; it must have a standby region. */
  readonly config: AppConfig;
  /** The primary region's stack: its regional name becomes PRIMARY. */
  readonly primary: RegionalStack;
  /** The standby region's stack: its regional name becomes SECONDARY. */
  readonly standby: RegionalStack;
}

/**
 * The global part of the app: Route 53 health checks on both regions, the failover
 * records of the public name, and their alarms, deployed to us-east-1 (where Route 53's
 * health-check metrics are, so the alarms and their topic are there too).
 *
 * It takes nothing from the regional stacks but names: the regional names are literals
 * built from config (`<region>.<domain>`), the hosted zone comes from config, and the
 * records alias the regional records of the same zone rather than the load balancers. So
 * no value crosses a region at deploy time (no `crossRegionReferences`, whose SSM
 * parameters and custom resources in both regions would also pin the exported values),
 * and synth stays offline. What does cross is order: the stack depends on both regional
 * stacks, because Route 53 refuses an alias to a record that does not exist yet.
 */
export class DnsFailoverStack extends Stack {
  /** Health checks, failover records and their alarms. */
  public readonly failoverDns: FailoverDns;
  /** The topic the health-check alarms notify (us-east-1). */
  public readonly alarmTopic: AlarmTopic;

  constructor(scope: Construct, id: string, props: DnsFailoverStackProps) {
    const { config } = props;
    if (!config.standby) {
      throw new Error(`DnsFailoverStack ${id} needs config.standby: failover needs a region to fail over to`);
    }
    super(scope, id, {
      ...props,
      env: { account: config.account, region: ROUTE53_METRICS_REGION },
      terminationProtection: props.terminationProtection ?? config.profile === 'production',
    });

    const hostedZone = route53.HostedZone.fromHostedZoneAttributes(this, 'HostedZone', {
      hostedZoneId: config.hostedZone.id,
      zoneName: config.hostedZone.name,
    });
    this.alarmTopic = new AlarmTopic(this, 'Alarms', {
      emails: [config.alarmEmail],
      displayName: `${config.appName} DNS failover alarms`,
    });
    this.failoverDns = new FailoverDns(this, 'FailoverDns', {
      hostedZone,
      domainName: config.domainName,
      primary: {
        region: props.primary.region,
        regionalDomainName: props.primary.loadBalancer.regionalDomainName,
      },
      secondary: {
        region: props.standby.region,
        regionalDomainName: props.standby.loadBalancer.regionalDomainName,
      },
    });
    this.alarmTopic.notify(...this.failoverDns.alarms);

    for (const regional of [props.primary, props.standby]) {
      this.addStackDependency(
        regional,
        `the failover records alias ${regional.loadBalancer.regionalDomainName}`,
      );
    }
  }
}
