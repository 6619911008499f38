import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Database, DatabaseProps } from '../../lib/constructs/database';
import { threeTierVpc } from '../helpers/vpc';
import { ROOT, buildTestApp, shippedConfig } from '../helpers/app';

describe('Database in the production stacks', () => {
  const { stacks } = buildTestApp(shippedConfig('default'));
  const primary = Template.fromStack(stacks.primary);
  const standby = Template.fromStack(stacks.standby!);
  const keyId = stacks.primary.getLogicalId(stacks.primary.database.encryptionKey.node.defaultChild as never);

  test('runs Aurora PostgreSQL 16.8 with IAM auth, the customer key, 35-day PITR, log exports and a non-default port', () => {
    primary.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql',
      EngineVersion: '16.8',
      Port: 5433,
      StorageEncrypted: true,
      KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      EnableIAMDatabaseAuthentication: true,
      DeletionProtection: true,
      BackupRetentionPeriod: 35,
      EnableCloudwatchLogsExports: ['postgresql'],
    });
    primary.hasResource('AWS::RDS::DBCluster', {
      DeletionPolicy: 'Snapshot',
      UpdateReplacePolicy: 'Snapshot',
    });
  });

  test('puts the writer and the reader in different AZs, private, with Performance Insights under the key', () => {
    const instances = Object.values(primary.findResources('AWS::RDS::DBInstance')).map((r) => r.Properties);
    expect(instances.map((i) => i.AvailabilityZone).sort()).toEqual(['us-east-1a', 'us-east-1b']);
    for (const instance of instances) {
      expect(instance).toMatchObject({
        DBInstanceClass: 'db.r7g.large',
        PubliclyAccessible: false,
        EnablePerformanceInsights: true,
        PerformanceInsightsKMSKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
        MonitoringInterval: 60,
      });
    }
  });

  test('forces TLS in the cluster parameter group', () => {
    primary.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
      Parameters: Match.objectLike({ 'rds.force_ssl': '1' }),
    });
  });

  test('lives in the isolated subnets', () => {
    const subnetGroup = Object.values(primary.findResources('AWS::RDS::DBSubnetGroup'))[0];
    expect(JSON.stringify(subnetGroup.Properties.SubnetIds)).toMatch(/DataSubnet1.*DataSubnet2.*DataSubnet3/);
  });

  test('keeps credentials in Secrets Manager under the key, rotated every 30 days', () => {
    primary.hasResourceProperties('AWS::SecretsManager::Secret', {
      KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
    });
    primary.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
    });
  });

  test('replicates the master secret to the standby region, where a failed-over fleet reads it', () => {
    primary.hasResourceProperties('AWS::SecretsManager::Secret', {
      ReplicaRegions: [{ Region: 'us-west-2' }],
    });
  });

  test('tells clients to connect to the proxy on 5432 and the proxy to reach the cluster on 5433', () => {
    expect(stacks.primary.database.proxyPort).toBe(5432);
    expect(stacks.primary.database.port).toBe(5433);
    primary.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      IpProtocol: 'tcp',
      FromPort: 5432,
      ToPort: 5432,
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('SecurityGroupsDatabaseProxy'), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('SecurityGroupsApp'), 'GroupId'] },
    });
  });

  test('RDS Proxy requires TLS and IAM auth, with a borrow timeout', () => {
    primary.hasResourceProperties('AWS::RDS::DBProxy', {
      EngineFamily: 'POSTGRESQL',
      RequireTLS: true,
      Auth: [Match.objectLike({ IAMAuth: 'REQUIRED' })],
      VpcSecurityGroupIds: [
        { 'Fn::GetAtt': [Match.stringLikeRegexp('SecurityGroupsDatabaseProxy'), 'GroupId'] },
      ],
    });
    primary.hasResourceProperties('AWS::RDS::DBProxyTargetGroup', {
      ConnectionPoolConfigurationInfo: Match.objectLike({ ConnectionBorrowTimeout: 5 }),
    });
  });

  test('the primary creates the global cluster from its cluster', () => {
    primary.hasResourceProperties('AWS::RDS::GlobalCluster', {
      GlobalClusterIdentifier: 'resilient-shop-global',
      DeletionProtection: true,
    });
    const global = Object.values(primary.findResources('AWS::RDS::GlobalCluster'))[0].Properties;
    expect(JSON.stringify(global.SourceDBClusterIdentifier)).toMatch(
      /:cluster:.*"Ref":"DatabaseCluster[0-9A-F]+"/,
    );
  });

  test('the standby cluster joins the global cluster with no credentials, proxy or secret of its own', () => {
    standby.hasResourceProperties('AWS::RDS::DBCluster', {
      GlobalClusterIdentifier: 'resilient-shop-global',
      EngineVersion: '16.8',
      MasterUsername: Match.absent(),
      MasterUserPassword: Match.absent(),
      StorageEncrypted: true,
    });
    standby.resourceCountIs('AWS::RDS::DBProxy', 0);
    // no database secret: the only secret of the standby is the fleet's admin token
    expect(Object.keys(standby.findResources('AWS::SecretsManager::Secret'))).toEqual([
      stacks.standby!.getLogicalId(stacks.standby!.fleet.adminTokenSecret.node.defaultChild as never),
    ]);
    standby.resourceCountIs('AWS::RDS::GlobalCluster', 0);
    standby.resourceCountIs('AWS::RDS::DBInstance', 1);
    expect(stacks.standby!.dependencies).toContain(stacks.primary);
  });

  test('every alarm of the tier notifies the alarm topic and links an existing runbook', () => {
    const check = (template: Template, expected: string[]) => {
      // The tier's alarms only: other tiers of the stack (queues, workers, fleet) have their own tests.
      const alarms = Object.entries(template.findResources('AWS::CloudWatch::Alarm'))
        .filter(([logicalId]) => logicalId.startsWith('Database'))
        .map(([, a]) => a.Properties);
      const names = alarms.map(
        (a) => /Runbook: docs\/runbooks\/([a-z-]+)\.md$/.exec(a.AlarmDescription)?.[1],
      );
      expect(names.sort()).toEqual([...expected].sort());
      for (const alarm of alarms) {
        expect(alarm.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^AlarmsTopic/) }]);
        expect(alarm.OKActions).toEqual(alarm.AlarmActions);
      }
      for (const name of names) expect(existsSync(join(ROOT, 'docs', 'runbooks', `${name}.md`))).toBe(true);
    };
    const common = [
      'database-cpu',
      'database-memory',
      'database-connections',
      'database-deadlocks',
      'database-local-storage',
    ];
    check(primary, [...common, 'database-replica-lag', 'database-writer-unavailable']);
    check(standby, [...common, 'database-global-lag']);
  });
});

describe('Database in the lean stack', () => {
  const lean = Template.fromStack(buildTestApp(shippedConfig('lean')).stacks.primary);

  test('is one Serverless v2 instance, deletable, with the same encryption and TLS', () => {
    lean.hasResourceProperties('AWS::RDS::DBCluster', {
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
      DeletionProtection: false,
      StorageEncrypted: true,
      EnableIAMDatabaseAuthentication: true,
      BackupRetentionPeriod: 7,
    });
    lean.resourceCountIs('AWS::RDS::DBInstance', 1);
    lean.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceClass: 'db.serverless' });
    lean.resourceCountIs('AWS::RDS::GlobalCluster', 0);
  });

  test('alarms on capacity near its ceiling instead of a fixed free-memory floor', () => {
    // GIVEN Serverless v2, whose memory grows with capacity
    const alarms = Object.values(lean.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    // THEN the memory runbook's alarm watches ACUUtilization, and FreeableMemory is not alarmed
    expect(alarms.filter((a) => a.MetricName === 'FreeableMemory')).toEqual([]);
    expect(alarms.find((a) => a.MetricName === 'ACUUtilization')).toMatchObject({
      Threshold: 90,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmDescription: expect.stringMatching(/Runbook: docs\/runbooks\/database-memory\.md$/),
    });
  });
});

describe('Database validation', () => {
  const make = (props: Partial<DatabaseProps>) => {
    const stack = new Stack(new App(), 'V', { env: { account: '111111111111', region: 'us-east-1' } });
    const vpc = threeTierVpc(stack);
    const sg = () => new ec2.SecurityGroup(stack, `Sg${Math.random()}`, { vpc });
    return new Database(stack, 'Db', {
      vpc,
      securityGroup: sg(),
      proxySecurityGroup: sg(),
      availabilityZones: ['us-east-1a', 'us-east-1b'],
      ...props,
    });
  };

  test.each<[string, Partial<DatabaseProps>, RegExp]>([
    ['the default port', { port: 5432 }, /Database port 5432 is not allowed/],
    ['negative readers', { readers: -1 }, /readers must be a whole number from 0 to 15, got -1/],
    ['16 readers', { readers: 16 }, /readers must be a whole number from 0 to 15, got 16/],
    [
      'retention 0',
      { backupRetentionDays: 0 },
      /backupRetentionDays must be 1 to 35 \(Aurora's range\), got 0/,
    ],
    [
      'retention 36',
      { backupRetentionDays: 36 },
      /backupRetentionDays must be 1 to 35 \(Aurora's range\), got 36/,
    ],
    ['one AZ', { availabilityZones: ['us-east-1a'] }, /needs at least 2 availabilityZones, got 1/],
    [
      'secret replicas on a secondary',
      { global: { role: 'secondary', globalClusterIdentifier: 'g' }, secretReplicaRegions: ['us-west-2'] },
      /secretReplicaRegions is for the primary: a global secondary has no secret of its own/,
    ],
  ])('rejects %s', (_name, props, message) => {
    expect(() => make(props)).toThrow(message);
  });

  test('grantConnect lets a role connect through the proxy as the application user', () => {
    const db = make({});
    const role = new iam.Role(Stack.of(db), 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    });
    db.grantConnect(role);
    const policy = Object.values(Template.fromStack(Stack.of(db)).findResources('AWS::IAM::Policy')).find(
      (p) => /"Ref":"ServiceRole[0-9A-F]{8}"/.test(JSON.stringify(p.Properties.Roles)),
    );
    expect(JSON.stringify(policy?.Properties.PolicyDocument)).toMatch(/rds-db:connect.*dbuser:.*\/checkout/);
  });

  test('on a secondary, grantConnect grants IAM login to the cluster itself (it has no proxy)', () => {
    // GIVEN a global secondary (one instance, as the standby runs it) and a role of its fleet
    const db = make({ global: { role: 'secondary', globalClusterIdentifier: 'g' }, readers: 0 });
    const role = new iam.Role(Stack.of(db), 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    });
    // WHEN granted THEN the role may log in as checkout on the cluster's resource id
    db.grantConnect(role);
    const template = Template.fromStack(Stack.of(db));
    const policy = Object.values(template.findResources('AWS::IAM::Policy')).find((p) =>
      /"Ref":"ServiceRole[0-9A-F]{8}"/.test(JSON.stringify(p.Properties.Roles)),
    );
    expect(JSON.stringify(policy?.Properties.PolicyDocument)).toMatch(
      /rds-db:connect.*dbuser:".*"DBClusterResourceId"\]\},"\/checkout"/,
    );
    // and the endpoint is its instance's (the cluster's writer endpoint stays inactive
    // until promotion), on the cluster's port
    expect(db.connectionPort).toBe(5433);
    expect(Stack.of(db).resolve(db.endpoint)).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^DbClusterWriter/), 'Endpoint.Address'],
    });
    const instances = Template.fromStack(Stack.of(db)).findResources('AWS::RDS::DBInstance');
    expect(Object.keys(instances)).toEqual([Stack.of(db).resolve(db.endpoint)['Fn::GetAtt'][0]]);
  });

  test('a secondary with readers has no single instance for its clients: endpoint says so', () => {
    const db = make({ global: { role: 'secondary', globalClusterIdentifier: 'g' }, readers: 1 });
    expect(() => db.endpoint).toThrow(
      /a global secondary without a proxy must run exactly one instance \(it has 2\)/,
    );
  });

  test('on a secondary, the master user has no IAM path to grant', () => {
    const db = make({ global: { role: 'secondary', globalClusterIdentifier: 'g' } });
    expect(() => db.grantConnect(new iam.AccountRootPrincipal(), db.masterUser)).toThrow(
      /shop_admin has no IAM auth path on a global secondary/,
    );
  });

  test('rejects an engine version that is not major.minor', () => {
    expect(() => make({ engineVersion: '16' })).toThrow(/version "16" must be major.minor, such as "16.8"/);
  });
});
