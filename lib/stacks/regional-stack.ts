import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AppConfig, RegionConfig, activeAzs } from '../config';
import { Network } from '../constructs/network';
import { SecurityGroups } from '../constructs/security-groups';

/** The role a region plays. */
export type RegionRole = 'primary' | 'standby';

/** Properties of {@link RegionalStack}. */
export interface RegionalStackProps extends StackProps {
  /** The validated deployment config. */
  readonly config: AppConfig;
  /** Which of the config's regions this stack deploys. */
  readonly role: RegionRole;
}

/**
 * Everything one region runs. The primary and the warm standby are the same stack;
 * the standby gets smaller minimums and replicas of the primary's data.
 */
export class RegionalStack extends Stack {
  /** This region's part of the config. */
  public readonly regionConfig: RegionConfig;
  /** Tier 1: the VPC and its endpoints. */
  public readonly network: Network;
  /** Tier 2: the security group graph. */
  public readonly securityGroups: SecurityGroups;

  private readonly azs: string[];

  constructor(scope: Construct, id: string, props: RegionalStackProps) {
    const { config, role } = props;
    const regionConfig = role === 'primary' ? config.primary : config.standby;
    if (!regionConfig) {
      throw new Error(`RegionalStack ${id}: role "standby" needs config.standby`);
    }
    super(scope, id, {
      ...props,
      env: { account: config.account, region: regionConfig.region },
      terminationProtection: props.terminationProtection ?? config.profile === 'production',
    });
    this.regionConfig = regionConfig;
    this.azs = activeAzs(config, regionConfig);
    const production = config.profile === 'production';

    this.network = new Network(this, 'Network', {
      availabilityZones: this.azs,
      cidr: regionConfig.vpcCidr,
      natGateways: production ? this.azs.length : 1,
      interfaceEndpoints: production,
    });

    this.securityGroups = new SecurityGroups(this, 'SecurityGroups', {
      vpc: this.network.vpc,
      allowedIngressCidrs: config.allowedIngressCidrs,
      appPort: config.ports.app,
      databasePort: config.ports.database,
    });
    this.network.allowEndpointAccessFrom(this.securityGroups.app, 'HTTPS from the checkout service');
    this.network.allowEndpointAccessFrom(this.securityGroups.lambda, 'HTTPS from the Lambda workers');
  }

  /**
   * The AZs from config. Overridden so that nothing in the stack ever triggers an
   * availability-zone context lookup (which would need AWS credentials at synth).
   */
  public override get availabilityZones(): string[] {
    return this.azs;
  }
}
