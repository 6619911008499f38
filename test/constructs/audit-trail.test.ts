import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { addCompliancePacks } from '../../lib/compliance';
import { AuditTrail } from '../../lib/constructs/audit-trail';
import { buildTestApp, configWith, newApp, shippedConfig } from '../helpers/app';
import { synthFindings } from '../helpers/gates';

type Statement = {
  Sid?: string;
  Effect: string;
  Principal?: { Service?: string | string[]; AWS?: unknown };
  Action: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
};

const actions = (s: Statement): string[] => [s.Action].flat();
const services = (s: Statement): string[] => [s.Principal?.Service ?? []].flat() as string[];

describe('AuditTrail in the primary stack of config/default.json', () => {
  const { stacks } = buildTestApp(shippedConfig('default'));
  const primary = Template.fromStack(stacks.primary);
  const standby = Template.fromStack(stacks.standby!);
  const trail = Object.values(primary.findResources('AWS::CloudTrail::Trail'));
  const keyPolicy = (): Statement[] => {
    const keys = primary.findResources('AWS::KMS::Key', {
      Properties: { Description: Match.stringLikeRegexp('CloudTrail') },
    });
    expect(Object.keys(keys)).toHaveLength(1);
    return Object.values(keys)[0].Properties.KeyPolicy.Statement as Statement[];
  };

  test('one multi-region trail of every management event, with integrity digests, in the primary only', () => {
    expect(trail).toHaveLength(1);
    expect(trail[0].Properties).toMatchObject({
      TrailName: 'resilient-shop-audit',
      IsMultiRegionTrail: true,
      IncludeGlobalServiceEvents: true,
      EnableLogFileValidation: true,
      IsLogging: true,
    });
    // A trail with no event selectors records all management events, read and write
    const selectors = trail[0].Properties.EventSelectors ?? [];
    for (const s of selectors)
      expect(s).toMatchObject({ IncludeManagementEvents: true, ReadWriteType: 'All' });
    expect(standby.findResources('AWS::CloudTrail::Trail')).toEqual({});
  });

  test('log files land in a KMS-encrypted, versioned, Object Lock bucket that only TLS reaches', () => {
    const bucket = Object.values(
      primary.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } }),
    );
    expect(bucket).toHaveLength(1);
    const props = bucket[0].Properties;
    expect(bucket[0].DeletionPolicy).toBe('Retain');
    expect(props.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(props.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 365 } },
    });
    expect(
      props.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault,
    ).toMatchObject({ SSEAlgorithm: 'aws:kms' });
    // The trail writes to this bucket, under this key
    expect(JSON.stringify(trail[0].Properties.S3BucketName)).toContain(
      Object.keys(primary.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } }))[0],
    );
    expect(JSON.stringify(trail[0].Properties.KMSKeyId)).toMatch(/AuditTrailKey/);
  });

  test('the bucket policy lets CloudTrail check the ACL and write only under AWSLogs/<account>/, and denies plain HTTP', () => {
    const policies = Object.values(primary.findResources('AWS::S3::BucketPolicy')).filter((p) =>
      JSON.stringify(p.Properties.Bucket).includes('AuditTrailBucket'),
    );
    expect(policies).toHaveLength(1);
    const statements = policies[0].Properties.PolicyDocument.Statement as (Statement & {
      Resource: unknown;
    })[];
    const byCloudTrail = statements.filter((s) => services(s).includes('cloudtrail.amazonaws.com'));
    expect(byCloudTrail.flatMap(actions).sort()).toEqual(['s3:GetBucketAcl', 's3:PutObject']);
    const put = byCloudTrail.find((s) => actions(s).includes('s3:PutObject'))!;
    expect(JSON.stringify(put.Resource)).toContain('/AWSLogs/111111111111/*');
    expect(put.Condition).toMatchObject({ StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control' } });
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  test('the key lets CloudTrail encrypt for this trail only, and describe the key; nothing else outside IAM', () => {
    const statements = keyPolicy();
    const trailArn = 'arn:aws:cloudtrail:us-east-1:111111111111:trail/resilient-shop-audit';
    const encrypt = statements.find(
      (s) => actions(s).includes('kms:GenerateDataKey*') && services(s).includes('cloudtrail.amazonaws.com'),
    );
    expect(encrypt?.Condition).toEqual({
      StringEquals: { 'aws:SourceArn': expect.anything() },
      StringLike: { 'kms:EncryptionContext:aws:cloudtrail:arn': expect.anything() },
    });
    expect(JSON.stringify(encrypt?.Condition)).toContain(trailArn.replace('us-east-1', '').split('::')[0]);
    expect(JSON.stringify(encrypt?.Condition?.StringEquals)).toContain(':trail/resilient-shop-audit');
    expect(JSON.stringify(encrypt?.Condition?.StringLike)).toContain(':cloudtrail:*:111111111111:trail/*');
    const describe = statements.find(
      (s) => actions(s).includes('kms:DescribeKey') && services(s).includes('cloudtrail.amazonaws.com'),
    );
    expect(JSON.stringify(describe?.Condition?.StringEquals)).toContain(':trail/resilient-shop-audit');
    // Every service statement is one of the three this key needs (CloudTrail x2, CloudWatch Logs)
    const serviceStatements = statements.filter((s) => services(s).length > 0);
    expect(serviceStatements.map((s) => `${services(s).join()} ${actions(s).sort().join()}`).sort()).toEqual([
      'cloudtrail.amazonaws.com kms:DescribeKey',
      'cloudtrail.amazonaws.com kms:GenerateDataKey*',
      'logs.us-east-1.amazonaws.com kms:Decrypt*,kms:Describe*,kms:Encrypt*,kms:GenerateDataKey*,kms:ReEncrypt*',
    ]);
    // No other principal than the account (which delegates to IAM)
    const others = statements.filter((s) => services(s).length === 0);
    for (const s of others) expect(JSON.stringify(s.Principal)).toMatch(/:root/);
  });

  test('CloudTrail also writes to an encrypted log group kept a year, through a role limited to that group', () => {
    expect(trail[0].Properties.CloudWatchLogsLogGroupArn).toBeDefined();
    const group = Object.entries(primary.findResources('AWS::Logs::LogGroup')).find(([id]) =>
      id.startsWith('AuditTrailLogGroup'),
    );
    expect(group?.[1].Properties).toMatchObject({ RetentionInDays: 365, KmsKeyId: expect.anything() });
    const policy = Object.values(primary.findResources('AWS::IAM::ManagedPolicy')).find((p) =>
      JSON.stringify(p.Properties.Roles ?? []).includes('AuditTrailLogsRole'),
    );
    const statements = policy?.Properties.PolicyDocument.Statement as (Statement & { Resource: unknown })[];
    expect(statements.flatMap(actions).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(JSON.stringify(trail[0].Properties.CloudWatchLogsRoleArn)).toContain('AuditTrailLogsRole');
    // Only CloudTrail, for this trail, may assume the role
    const role = Object.entries(primary.findResources('AWS::IAM::Role')).find(([id]) =>
      id.startsWith('AuditTrailLogsRole'),
    )![1];
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'cloudtrail.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceArn': expect.anything() } },
      }),
    ]);
    expect(role.Properties.Policies).toBeUndefined();
    expect(JSON.stringify(statements.map((s) => s.Resource))).toContain('AuditTrailLogGroup');
  });
});

describe('AuditTrail configuration', () => {
  test('auditTrail: false leaves it out (an organization trail records the account)', () => {
    const { stacks } = buildTestApp(configWith({ auditTrail: false }));
    expect(Template.fromStack(stacks.primary).findResources('AWS::CloudTrail::Trail')).toEqual({});
  });

  test('a retention that is not a whole number of days is refused with the field named', () => {
    const stack = new Stack(new App(), 'S', { env: { account: '111111111111', region: 'us-east-1' } });
    expect(() => new AuditTrail(stack, 'Audit', { trailName: 't', retentionDays: 0 })).toThrow(
      /retentionDays must be a whole number of days >= 1/,
    );
  });

  test('alone in a stack, it passes every registered pack, the wiring pack included', () => {
    const app = newApp();
    addCompliancePacks(app);
    const stack = new Stack(app, 'Audit', { env: { account: '111111111111', region: 'eu-west-1' } });
    new AuditTrail(stack, 'AuditTrail', { trailName: 'audit' });
    expect(synthFindings(app).findings.map((f) => `${f.rule} at ${f.paths.join(', ')}`)).toEqual([]);
  });
});
