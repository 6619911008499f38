import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';

/** Properties of {@link BackupPlan}. */
export interface BackupPlanProps {
  /** ARNs of what to back up (the Aurora cluster, the DynamoDB table). */
  readonly resourceArns: string[];
  /** Days each daily recovery point is kept, here and in the copy. */
  readonly retentionDays: number;
  /**
   * ARN of the vault in another region that receives a copy of every recovery point.
   *
   * @default - no copy (the lean profile without a standby region)
   */
  readonly copyToVaultArn?: string;
  /** Name of this region's vault. */
  readonly vaultName: string;
}

/**
 * AWS Backup: daily backups at 05:00 UTC into a KMS-encrypted vault, kept
 * `retentionDays`, copied to a vault in the standby region so a regional loss does
 * not take the backups with it. The vault and its key are always retained by
 * `cdk destroy` (see {@link createVault}).
 */
export class BackupPlan extends Construct {
  /** This region's vault, encrypted with its own customer managed key. */
  public readonly vault: backup.BackupVault;
  /** The daily plan (with the cross-region copy when `copyToVaultArn` is given). */
  public readonly plan: backup.BackupPlan;

  constructor(scope: Construct, id: string, props: BackupPlanProps) {
    super(scope, id);
    if (!Number.isInteger(props.retentionDays) || props.retentionDays < 1) {
      throw new Error(
        `BackupPlan retentionDays must be a whole number of days >= 1, got ${props.retentionDays}`,
      );
    }
    this.vault = createVault(this, 'Vault', props.vaultName);
    const retention = Duration.days(props.retentionDays);
    this.plan = new backup.BackupPlan(this, 'Plan', {
      backupVault: this.vault,
      backupPlanRules: [
        new backup.BackupPlanRule({
          ruleName: 'Daily',
          scheduleExpression: events.Schedule.cron({ hour: '5', minute: '0' }),
          startWindow: Duration.hours(1),
          completionWindow: Duration.hours(4),
          deleteAfter: retention,
          copyActions: props.copyToVaultArn
            ? [
                {
                  destinationBackupVault: backup.BackupVault.fromBackupVaultArn(
                    this,
                    'CopyTarget',
                    props.copyToVaultArn,
                  ),
                  deleteAfter: retention,
                },
              ]
            : undefined,
        }),
      ],
    });
    const selection = this.plan.addSelection('Data', {
      resources: props.resourceArns.map((arn) => backup.BackupResource.fromArn(arn)),
      allowRestores: true,
    });
    const role = selection.node.tryFindChild('Role');
    for (const policy of ['AWSBackupServiceRolePolicyForBackup', 'AWSBackupServiceRolePolicyForRestores']) {
      acknowledge(
        role?.node.defaultChild ?? selection,
        [`AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/${policy}]`],
        `${policy} is the service role policy AWS Backup documents; it tracks every service Backup supports without manual edits.`,
      );
    }
  }
}

/**
 * A KMS-encrypted vault with its own rotating key; used for both ends of the copy.
 * Vault and key are retained by `cdk destroy` in every profile: AWS Backup cannot
 * delete a vault that still holds recovery points, and they stay restorable until their
 * retention ends (delete them with the commands in docs/durability.md).
 */
export function createVault(scope: Construct, id: string, name: string): backup.BackupVault {
  const removalPolicy = RemovalPolicy.RETAIN;
  return new backup.BackupVault(scope, id, {
    backupVaultName: name,
    encryptionKey: new kms.Key(scope, `${id}Key`, {
      description: `Encrypts the ${name} backup vault`,
      enableKeyRotation: true,
      removalPolicy,
    }),
    removalPolicy,
  });
}
