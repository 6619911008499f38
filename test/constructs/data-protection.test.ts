import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { BackupPlan } from '../../lib/constructs/backup';
import { buildTestApp, shippedConfig } from '../helpers/app';

describe('IdempotencyTable', () => {
  const template = Template.fromStack(buildTestApp(shippedConfig('default')).stacks.primary);

  test('has the shape Powertools idempotency expects: key id, TTL on expiration', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
  });

  test('replicates to the standby region with PITR and KMS encryption in every replica', () => {
    const table = Object.values(template.findResources('AWS::DynamoDB::GlobalTable'))[0].Properties;
    expect(table.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: 'KMS' });
    expect(table.Replicas.map((r: { Region: string }) => r.Region).sort()).toEqual([
      'us-east-1',
      'us-west-2',
    ]);
    for (const replica of table.Replicas) {
      expect(replica.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(replica.DeletionProtectionEnabled).toBe(true);
    }
  });
});

describe('BackupPlan', () => {
  const { stacks } = buildTestApp(shippedConfig('default'));
  const primary = Template.fromStack(stacks.primary);
  const standby = Template.fromStack(stacks.standby!);

  test('backs up the cluster and the table daily, keeping 35 days', () => {
    primary.hasResourceProperties('AWS::Backup::BackupPlan', {
      BackupPlan: {
        BackupPlanRule: [
          Match.objectLike({
            ScheduleExpression: 'cron(0 5 * * ? *)',
            Lifecycle: { DeleteAfterDays: 35 },
          }),
        ],
      },
    });
    const selection = Object.values(primary.findResources('AWS::Backup::BackupSelection'))[0].Properties;
    const resources = JSON.stringify(selection.BackupSelection.Resources);
    expect(resources).toMatch(/:cluster:.*"Ref":"DatabaseCluster[0-9A-F]+"/);
    expect(resources).toMatch(/IdempotencyTable.*Arn/);
  });

  test('copies every recovery point to the standby region vault, which the standby stack creates', () => {
    const rule = Object.values(primary.findResources('AWS::Backup::BackupPlan'))[0].Properties.BackupPlan
      .BackupPlanRule[0];
    expect(rule.CopyActions).toHaveLength(1);
    expect(JSON.stringify(rule.CopyActions[0].DestinationBackupVaultArn)).toContain(
      ':backup:us-west-2:111111111111:backup-vault:resilient-shop-us-west-2-copies',
    );
    expect(rule.CopyActions[0].Lifecycle).toEqual({ DeleteAfterDays: 35 });
    standby.hasResourceProperties('AWS::Backup::BackupVault', {
      BackupVaultName: 'resilient-shop-us-west-2-copies',
      EncryptionKeyArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] },
    });
  });

  test('encrypts its vault with a customer managed key', () => {
    primary.hasResourceProperties('AWS::Backup::BackupVault', {
      BackupVaultName: 'resilient-shop-us-east-1',
      EncryptionKeyArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] },
    });
  });

  test('without a standby (lean) there is no copy', () => {
    const lean = Template.fromStack(buildTestApp(shippedConfig('lean')).stacks.primary);
    const rule = Object.values(lean.findResources('AWS::Backup::BackupPlan'))[0].Properties.BackupPlan
      .BackupPlanRule[0];
    expect(rule.CopyActions).toBeUndefined();
    expect(rule.Lifecycle).toEqual({ DeleteAfterDays: 7 });
  });

  test('rejects a retention below one day', () => {
    const stack = new Stack(new App(), 'B');
    expect(
      () => new BackupPlan(stack, 'Plan', { resourceArns: [], retentionDays: 0, vaultName: 'v' }),
    ).toThrow(/retentionDays must be a whole number of days >= 1, got 0/);
  });
});
