import { ArnFormat, Stack, StackProps } from 'aws-cdk-lib';
import { IBackupVault } from 'aws-cdk-lib/aws-backup';
import { Construct } from 'constructs';
import { AppConfig, RegionConfig, activeAzs } from '../config';
import { AlarmTopic } from '../constructs/alarm-topic';
import { BackupPlan, createVault } from '../constructs/backup';
import { Database, RDS_PROXY_PORT } from '../constructs/database';
import { IdempotencyTable } from '../constructs/idempotency-table';
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
  /** The SNS topic every alarm of the region notifies. */
  public readonly alarmTopic: AlarmTopic;
  /** Tier 4: Aurora (global primary or secondary) and, in the primary, RDS Proxy. */
  public readonly database: Database;
  /** Tier 4: the idempotency table (primary only; the standby holds its replica). */
  public readonly idempotencyTable?: IdempotencyTable;
  /** Tier 4: the backup plan (primary only). */
  public readonly backup?: BackupPlan;
  /** Tier 4: the vault receiving the primary's backup copies (standby only). */
  public readonly backupCopyVault?: IBackupVault;

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
      proxyPort: RDS_PROXY_PORT,
      // The standby runs no proxy: its fleet and workers reach the cluster directly.
      directDatabaseAccess: role === 'standby',
    });
    this.network.allowEndpointAccessFrom(this.securityGroups.app, 'HTTPS from the checkout service');
    this.network.allowEndpointAccessFrom(this.securityGroups.lambda, 'HTTPS from the Lambda workers');

    this.alarmTopic = new AlarmTopic(this, 'Alarms', {
      emails: [config.alarmEmail],
      displayName: `${config.appName} alarms`,
    });
    const isPrimary = role === 'primary';
    const names = dataNames(config);
    this.database = new Database(this, 'Database', {
      vpc: this.network.vpc,
      securityGroup: this.securityGroups.database,
      proxySecurityGroup: this.securityGroups.databaseProxy,
      availabilityZones: this.azs,
      port: config.ports.database,
      engineVersion: config.database.engineVersion,
      instanceType: config.database.instanceType,
      // The standby runs one instance: it is promoted to writer on a regional failover,
      // and readers are added then (see docs/runbooks/region-failover.md).
      readers: isPrimary ? config.database.readers : 0,
      serverless: !production,
      backupRetentionDays: config.database.backupRetentionDays,
      protectData: production,
      alarmTopic: this.alarmTopic.topic,
      // After a regional failover, migrations there read the master credentials from the replica.
      secretReplicaRegions: isPrimary && config.standby ? [config.standby.region] : undefined,
      global: config.standby
        ? { role: isPrimary ? 'primary' : 'secondary', globalClusterIdentifier: names.globalCluster }
        : undefined,
    });
    if (this.database.rotationSecurityGroup) {
      // Private DNS sends the rotation function's Secrets Manager calls to the endpoint.
      this.network.allowEndpointAccessFrom(
        this.database.rotationSecurityGroup,
        'HTTPS from the secret rotation function',
      );
    }

    if (isPrimary) {
      this.idempotencyTable = new IdempotencyTable(this, 'IdempotencyTable', {
        replicaRegions: config.standby ? [config.standby.region] : [],
        protectData: production,
      });
      this.backup = new BackupPlan(this, 'Backup', {
        vaultName: names.primaryVault,
        resourceArns: [this.database.cluster.clusterArn, this.idempotencyTable.table.tableArn],
        retentionDays: config.database.backupRetentionDays,
        copyToVaultArn: config.standby
          ? this.formatArn({
              service: 'backup',
              region: config.standby.region,
              resource: 'backup-vault',
              resourceName: names.standbyVault,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            })
          : undefined,
      });
    } else {
      this.backupCopyVault = createVault(this, 'BackupCopyVault', names.standbyVault);
    }
  }

  /**
   * The AZs from config. Overridden so that nothing in the stack ever triggers an
   * availability-zone context lookup (which would need AWS credentials at synth).
   */
  public override get availabilityZones(): string[] {
    return this.azs;
  }
}

/** Names both regions agree on without a cross-region reference. */
export function dataNames(config: AppConfig): {
  globalCluster: string;
  primaryVault: string;
  standbyVault: string;
} {
  return {
    globalCluster: `${config.appName}-global`,
    primaryVault: `${config.appName}-${config.primary.region}`,
    standbyVault: `${config.appName}-${config.standby?.region ?? 'none'}-copies`,
  };
}
