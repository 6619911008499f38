/**
 * The names `npm run failover` acts on, derived from a config exactly as the stacks derive
 * them, so the script needs no stack outputs and no lookups (and a dry run needs no AWS
 * credentials at all). test/scripts/failover.test.ts checks each against the synthesized
 * templates.
 */
import { stackNames } from '../lib/app';
import { AppConfig } from '../lib/config';
import { regionalDomainName } from '../lib/constructs/failover-dns';
import { dataNames } from '../lib/stacks/regional-stack';

/** Which region a failover moves the writer and the traffic to. */
export type FailoverTarget = 'primary' | 'standby';

/** One region as the failover sees it. */
export interface FailoverRegion {
  readonly role: FailoverTarget;
  readonly region: string;
  readonly stackName: string;
  /** The fleet's Auto Scaling group: `Fleet` names it `<stack name>-checkout`. */
  readonly autoScalingGroupName: string;
  /** The Aurora cluster: `Database` names it `<stack name>-aurora` in lower case. */
  readonly clusterIdentifier: string;
  /** What the global-cluster calls take as `TargetDbClusterIdentifier`. */
  readonly clusterArn: string;
  /** `<region>.<domain>`: the name its health check calls. */
  readonly regionalDomainName: string;
  /** The fleet's minimum in this region's normal role (CloudFormation's value). */
  readonly normalMinCapacity: number;
}

/** Everything both regions share, and each region. */
export interface FailoverNames {
  readonly globalClusterIdentifier: string;
  readonly domainName: string;
  /** The fleet minimum a region needs to carry all the traffic. */
  readonly fullCapacity: number;
  readonly primary: FailoverRegion;
  readonly standby: FailoverRegion;
}

/** The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`). */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The cluster identifier `Database` gives the cluster of a stack. */
export function clusterIdentifierOf(stackName: string): string {
  return `${stackName}-aurora`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63);
}

/**
 * The names of a config with a standby region.
 *
 * @throws Error when the config has no standby (there is nothing to fail over to)
 */
export function failoverNames(config: AppConfig): FailoverNames {
  const standby = config.standby;
  if (!standby) {
    throw new Error('the config has no standby region: there is nothing to fail over to');
  }
  const stacks = stackNames(config);
  const region = (
    role: FailoverTarget,
    regionName: string,
    stackName: string,
    normalMinCapacity: number,
  ): FailoverRegion => {
    const clusterIdentifier = clusterIdentifierOf(stackName);
    return {
      role,
      region: regionName,
      stackName,
      autoScalingGroupName: `${stackName}-checkout`,
      clusterIdentifier,
      clusterArn: `arn:${partitionOf(regionName)}:rds:${regionName}:${config.account}:cluster:${clusterIdentifier}`,
      regionalDomainName: regionalDomainName(regionName, config.domainName),
      normalMinCapacity,
    };
  };
  return {
    globalClusterIdentifier: dataNames(config).globalCluster,
    domainName: config.domainName,
    fullCapacity: config.compute.minCapacity,
    primary: region('primary', config.primary.region, stacks.primary, config.compute.minCapacity),
    standby: region(
      'standby',
      standby.region,
      stacks.standby,
      config.compute.standbyMinCapacity ?? config.compute.minCapacity,
    ),
  };
}
