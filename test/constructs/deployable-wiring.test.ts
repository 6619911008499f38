/**
 * The defects a clean synth could not see (issue 8), each asserted on the synthesized
 * templates of the shipped configs. Every test here failed on the code before the fix.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Database } from '../../lib/constructs/database';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { threeTierVpc } from '../helpers/vpc';
import { ROOT, buildTestApp, configWith, rawConfig, shippedConfig } from '../helpers/app';
import { ingressGraph } from '../helpers/ingress-graph';
import { wiringFindings } from '../nag/fixtures';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const production = buildTestApp(shippedConfig('default')).stacks;
const lean = buildTestApp(shippedConfig('lean')).stacks;
const primary = Template.fromStack(production.primary);
const standby = Template.fromStack(production.standby!);
const leanPrimary = Template.fromStack(lean.primary);

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

function statements(resource: Json, field: 'PolicyDocument' | 'KeyPolicy'): Json[] {
  return resource.Properties[field].Statement as Json[];
}

describe('1. alarm notifications can be delivered', () => {
  test.each([
    ['production primary', production.primary],
    ['production standby', production.standby!],
    ['lean', lean.primary],
  ])(
    '%s: the topic policy lets CloudWatch and EventBridge of this account publish, TLS only',
    (_n, stack) => {
      const template = Template.fromStack(stack);
      const topicId = logicalId(stack, stack.alarmTopic.topic);
      const policies = Object.values(template.findResources('AWS::SNS::TopicPolicy')).filter(
        (p) => JSON.stringify(p.Properties.Topics) === JSON.stringify([{ Ref: topicId }]),
      );
      expect(policies).toHaveLength(1);
      const docs = statements(policies[0], 'PolicyDocument');
      for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
        expect(docs).toContainEqual({
          Sid: expect.any(String),
          Effect: 'Allow',
          Principal: { Service: service },
          Action: 'sns:Publish',
          Resource: { Ref: topicId },
          Condition: { StringEquals: { 'aws:SourceAccount': stack.account } },
        });
      }
      // the TLS deny is kept, and nothing else is allowed
      expect(docs).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
      expect(docs.filter((d) => d.Effect === 'Allow')).toHaveLength(2);
    },
  );

  test('the topic key lets the same two services encrypt, and names no role', () => {
    const key = primary.toJSON().Resources[logicalId(production.primary, production.primary.alarmTopic.key)];
    const docs = statements(key, 'KeyPolicy');
    for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
      expect(docs).toContainEqual(
        expect.objectContaining({
          Effect: 'Allow',
          Principal: { Service: service },
          Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        }),
      );
    }
  });

  test('every alarm of every stack notifies the topic when it fires and when it recovers', () => {
    for (const stack of [production.primary, production.standby!, lean.primary]) {
      const topic = { Ref: logicalId(stack, stack.alarmTopic.topic) };
      const alarms = Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm'));
      expect(alarms.length).toBeGreaterThan(0);
      for (const alarm of alarms) {
        expect(alarm.Properties).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
      }
    }
  });
});

describe('2. the master secret can rotate, and a failed rotation pages someone', () => {
  test('the first rotation waits for the database instances (it would find no instance behind the endpoint)', () => {
    const stack = production.primary;
    const schedule = Object.values(primary.findResources('AWS::SecretsManager::RotationSchedule'))[0];
    const instances = Object.keys(primary.findResources('AWS::RDS::DBInstance'));
    expect(instances).toHaveLength(2);
    expect(schedule.DependsOn).toEqual(expect.arrayContaining(instances));
    expect(stack.database.rotationFailureRule).toBeDefined();
  });

  test('production keeps the master secret when the cluster is deleted (its final snapshot needs it)', () => {
    primary.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain' });
    leanPrimary.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Delete' });
  });

  test('the interface endpoints admit the rotation function on 443', () => {
    const stack = production.primary;
    const endpoints = logicalId(stack, stack.network.endpointSecurityGroup);
    const rotation = logicalId(stack, stack.database.rotationSecurityGroup!);
    expect(ingressGraph(primary)).toContainEqual({
      to: endpoints,
      from: rotation,
      protocol: 'tcp',
      fromPort: 443,
      toPort: 443,
    });
  });

  test('the rotation function runs in the VPC behind that group and calls the regional endpoint by name', () => {
    const stack = production.primary;
    const app = Object.values(primary.findResources('AWS::Serverless::Application'))[0];
    expect(JSON.stringify(app.Properties.Parameters.vpcSecurityGroupIds)).toContain(
      logicalId(stack, stack.database.rotationSecurityGroup!),
    );
    // private DNS on the endpoint is what routes this name to the endpoint
    expect(JSON.stringify(app.Properties.Parameters.endpoint)).toContain('secretsmanager');
    primary.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: 'com.amazonaws.us-east-1.secretsmanager',
      PrivateDnsEnabled: true,
    });
  });

  test.each([
    ['production', production.primary],
    ['lean', lean.primary],
  ])(
    '%s: RotationFailed and RotationAbandoned events go to the alarm topic with the runbook',
    (_n, stack) => {
      const template = Template.fromStack(stack);
      const topicId = logicalId(stack, stack.alarmTopic.topic);
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.secretsmanager'],
          'detail-type': ['AWS Service Event via CloudTrail'],
          detail: { eventName: ['RotationFailed', 'RotationAbandoned'] },
        },
        Targets: [
          Match.objectLike({
            Arn: { Ref: topicId },
            InputTransformer: Match.objectLike({
              InputTemplate: Match.stringLikeRegexp('Runbook: docs/runbooks/database-secret-rotation.md'),
            }),
          }),
        ],
      });
      expect(existsSync(join(ROOT, 'docs/runbooks/database-secret-rotation.md'))).toBe(true);
    },
  );
});

describe('3. the service can log in through RDS Proxy with IAM as checkout', () => {
  const stack = production.primary;
  const proxy = () => Object.values(primary.findResources('AWS::RDS::DBProxy'))[0].Properties;

  test('the proxy uses end-to-end IAM auth, TLS required, with the master secret only for migrations', () => {
    expect(proxy()).toMatchObject({
      DefaultAuthScheme: 'IAM_AUTH',
      RequireTLS: true,
      Auth: [{ AuthScheme: 'SECRETS', IAMAuth: 'REQUIRED', SecretArn: expect.anything() }],
    });
  });

  test("the proxy's own role may log in to the cluster as checkout, and read the master secret", () => {
    const resources = primary.toJSON().Resources as Record<string, Json>;
    const role = resources[proxy().RoleArn['Fn::GetAtt'][0]];
    const attached = (role.Properties.ManagedPolicyArns as Json[]).map((arn) => resources[arn.Ref]);
    expect(attached).toHaveLength(1);
    const docs = JSON.stringify(attached[0].Properties.PolicyDocument);
    const clusterId = logicalId(stack, stack.database.cluster);
    expect(docs).toContain(
      JSON.stringify({
        Action: 'rds-db:connect',
        Effect: 'Allow',
        Resource: {
          'Fn::Join': [
            '',
            [
              'arn:aws:rds-db:us-east-1:111111111111:dbuser:',
              { 'Fn::GetAtt': [clusterId, 'DBClusterResourceId'] },
              '/checkout',
            ],
          ],
        },
        Sid: 'ConnectAsApplicationUser',
      }),
    );
    expect(docs).toMatch(/secretsmanager:GetSecretValue/);
    expect(docs).toMatch(/"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"/);
  });

  test('the cluster accepts IAM logins', () => {
    primary.hasResourceProperties('AWS::RDS::DBCluster', { EnableIAMDatabaseAuthentication: true });
  });
});

describe('4. after a regional failover the standby fleet reaches the promoted writer', () => {
  test('the standby cluster admits the app and Lambda groups on its port, and nothing else', () => {
    const stack = production.standby!;
    const sgs = stack.securityGroups;
    const toCluster = ingressGraph(standby).filter((e) => e.to === logicalId(stack, sgs.database));
    expect(toCluster.map((e) => `${e.from}:${e.fromPort}-${e.toPort}`).sort()).toEqual(
      [`${logicalId(stack, sgs.app)}:5433-5433`, `${logicalId(stack, sgs.lambda)}:5433-5433`].sort(),
    );
  });

  test('the primary cluster stays reachable only through its proxy (and the rotation function and the migration job)', () => {
    const stack = production.primary;
    const sgs = stack.securityGroups;
    const from = ingressGraph(primary)
      .filter((e) => e.to === logicalId(stack, sgs.database))
      .map((e) => e.from)
      .sort();
    expect(from).toEqual(
      [
        logicalId(stack, sgs.databaseProxy),
        logicalId(stack, stack.database.rotationSecurityGroup!),
        logicalId(stack, stack.migrationJob!.securityGroup),
      ].sort(),
    );
  });

  test('the region-failover runbook says the standby fleet connects to the cluster directly', () => {
    const runbook = readFileSync(join(ROOT, 'docs/runbooks/region-failover.md'), 'utf8');
    expect(runbook).toMatch(/no RDS Proxy/i);
    expect(runbook).toMatch(/directly/);
    expect(runbook).toMatch(/writer endpoint is\s+inactive until promotion/);
    expect(runbook).not.toMatch(/until a proxy is created there/);
  });
});

describe('5. engine upgrades: one version from config, standby first, no automatic drift', () => {
  test('both regions run the version config gives', () => {
    const config = configWith({
      database: { ...(rawConfig().database as Json), engineVersion: '16.9' } as never,
    });
    const { stacks } = buildTestApp(config);
    for (const stack of [stacks.primary, stacks.standby!]) {
      Template.fromStack(stack).hasResourceProperties('AWS::RDS::DBCluster', { EngineVersion: '16.9' });
    }
  });

  test('global members never upgrade on their own; a standalone lean cluster may', () => {
    for (const template of [primary, standby]) {
      const instances = Object.values(template.findResources('AWS::RDS::DBInstance'));
      expect(instances.length).toBeGreaterThan(0);
      for (const i of instances) expect(i.Properties.AutoMinorVersionUpgrade).toBe(false);
    }
    for (const i of Object.values(leanPrimary.findResources('AWS::RDS::DBInstance'))) {
      expect(i.Properties.AutoMinorVersionUpgrade).toBe(true);
    }
  });

  test('the standby can be deployed alone, before the primary (it imports nothing from it)', () => {
    expect(JSON.stringify(standby.toJSON())).not.toContain('Fn::ImportValue');
  });

  test('the upgrade runbook deploys the standby before the primary', () => {
    const runbook = readFileSync(join(ROOT, 'docs/runbooks/database-engine-upgrade.md'), 'utf8');
    const standbyStep = runbook.indexOf('cdk deploy ResilientShop-Standby --exclusively');
    const primaryStep = runbook.indexOf('cdk deploy ResilientShop-Primary --exclusively');
    expect(standbyStep).toBeGreaterThan(-1);
    expect(primaryStep).toBeGreaterThan(standbyStep);
    expect(runbook).toMatch(/database\.engineVersion/);
  });
});

describe('6. lean cdk destroy succeeds once backups exist', () => {
  test('the vault and its key are retained, so destroy never tries to delete a vault with recovery points', () => {
    leanPrimary.hasResource('AWS::Backup::BackupVault', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    const vaultKey = Object.values(leanPrimary.findResources('AWS::Backup::BackupVault'))[0].Properties
      .EncryptionKeyArn['Fn::GetAtt'][0];
    expect(leanPrimary.toJSON().Resources[vaultKey].DeletionPolicy).toBe('Retain');
  });

  test('the cluster key is retained too: Aurora recovery points stay encrypted with it', () => {
    const stack = lean.primary;
    const key = leanPrimary.toJSON().Resources[logicalId(stack, stack.database.encryptionKey as never)];
    expect(key.DeletionPolicy).toBe('Retain');
  });
});

describe('7. no key policy names a principal created in the same deploy', () => {
  test.each([
    ['production primary', production.primary],
    ['production standby', production.standby!],
    ['lean', lean.primary],
  ])('%s', (_n, stack: RegionalStack) => {
    const template = Template.fromStack(stack).toJSON();
    const created = new Set(
      Object.entries(template.Resources as Record<string, Json>)
        .filter(([, r]) => ['AWS::IAM::Role', 'AWS::IAM::User', 'AWS::IAM::Group'].includes(r.Type))
        .map(([id]) => id),
    );
    const named = Object.entries(template.Resources as Record<string, Json>)
      .filter(([, r]) => r.Type === 'AWS::KMS::Key')
      .flatMap(([id, r]) =>
        statements(r, 'KeyPolicy')
          .filter((st) =>
            [...created].some((role) => JSON.stringify(st.Principal ?? {}).includes(`"${role}"`)),
          )
          .map((st) => `${id}: ${JSON.stringify(st.Principal)}`),
      );
    expect(named).toEqual([]);
  });
});

describe('smaller findings', () => {
  test('lean: the connections alarm fires at 60% of what 4 ACU allow (493 of 823), not at 1000', () => {
    leanPrimary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DatabaseConnections',
      Threshold: 493,
    });
  });

  test('standby: a detached secondary (no lag reported) counts as lagging', () => {
    standby.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'AuroraGlobalDBRPOLag',
      TreatMissingData: 'breaching',
    });
  });

  test('lean: Performance Insights is on, under the cluster key', () => {
    const stack = lean.primary;
    const keyId = logicalId(stack, stack.database.encryptionKey as never);
    leanPrimary.hasResourceProperties('AWS::RDS::DBInstance', {
      EnablePerformanceInsights: true,
      PerformanceInsightsKMSKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
    });
  });

  test('standby: the cluster key keeps no statement for the secret the secondary does not have', () => {
    const stack = production.standby!;
    const key = standby.toJSON().Resources[logicalId(stack, stack.database.encryptionKey as never)];
    expect(JSON.stringify(key.Properties.KeyPolicy)).not.toContain('secretsmanager');
    // the only secret of the standby is the fleet's own admin token
    expect(Object.keys(standby.findResources('AWS::SecretsManager::Secret'))).toEqual([
      logicalId(stack, stack.fleet.adminTokenSecret as never),
    ]);
  });
});

describe('3b. who may log in through the shipped Database, proven by the wiring pack', () => {
  const build = (user?: string) =>
    wiringFindings((stack) => {
      const vpc = threeTierVpc(stack);
      const group = (id: string) => new ec2.SecurityGroup(stack, id, { vpc });
      const db = new Database(stack, 'Db', {
        vpc,
        securityGroup: group('ClusterSg'),
        proxySecurityGroup: group('ProxySg'),
        availabilityZones: ['us-east-1a', 'us-east-1b'],
      });
      const role = new iam.Role(stack, 'ServiceRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      });
      db.grantConnect(role, user);
    }).filter((f) => f.includes('DbConnectAuth'));

  test('checkout (IAM end to end) and shop_admin (the secret entry) have an auth path', () => {
    expect(build()).toEqual([]);
    expect(build('shop_admin')).toEqual([]);
  });

  test('a user the proxy cannot log in as is reported', () => {
    expect(build('reporting')).toEqual([
      expect.stringMatching(
        /^ResilientShopWiring-DbConnectAuth\[reporting@.*\] at Fixture\/ServiceRole\/DefaultPolicy\/Resource$/,
      ),
    ]);
  });
});
