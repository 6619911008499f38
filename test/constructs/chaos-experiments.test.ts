import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { addCompliancePacks } from '../../lib/compliance';
import {
  ASG_INSTANCE_TAG,
  ChaosExperiments,
  ChaosExperimentsProps,
  FAULT_CONFIG_PREFIX,
  FIS_TARGET_TAG,
  GAME_DAY_METADATA,
  GameDayNotes,
} from '../../lib/constructs/chaos-experiments';
import {
  FIS_EXTENSION_LAYER_PARAMETER,
  REPO_ROOT,
  WorkerFunction,
} from '../../lib/constructs/worker-function';
import { StackTemplate, synthesizeShippedConfig } from '../../scripts/game-day';
import { newApp, shippedConfig } from '../helpers/app';
import { CfnLintMatch, cfnLint, synthFindings } from '../helpers/gates';
import { requireTool } from '../helpers/tools';

const hasCfnLint = requireTool('cfn-lint', 'cfn-lint checks the experiment templates');

const ENV = { account: '111111111111', region: 'us-east-1' };
const AZS = ['us-east-1a', 'us-east-1b', 'us-east-1c'];
const IMPAIRED_AZ = 'us-east-1a';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Resource = { Type: string; Properties: Json; Metadata?: Json };

interface Fixture {
  readonly stack: Stack;
  readonly chaos: ChaosExperiments;
  readonly template: Template;
  readonly resources: Record<string, Resource>;
  readonly ids: { asg: string; lb: string; cluster: string; fn: string; alarm: string; dlqAlarm: string };
}

/**
 * A stack with what the experiments target: a three-AZ VPC (public, app and data subnets),
 * an Auto Scaling group, a load balancer, an Aurora cluster with a reader, a worker, and a
 * stop alarm.
 */
function fixture(overrides: (parts: FixtureParts) => Partial<ChaosExperimentsProps> = () => ({})): Fixture {
  const app = newApp();
  const stack = new Stack(app, 'Shop', { env: ENV });
  const parts = fixtureParts(stack);
  const chaos = new ChaosExperiments(stack, 'Chaos', {
    stopAlarm: parts.alarm,
    vpc: parts.vpc,
    availabilityZone: IMPAIRED_AZ,
    autoScalingGroup: parts.asg,
    loadBalancer: parts.lb,
    zonalAutoshiftEnabled: true,
    failoverCluster: parts.cluster,
    lambdaFaults: { functions: [parts.worker], stopAlarms: [parts.dlqAlarm] },
    ...overrides(parts),
  });
  const template = Template.fromStack(stack);
  const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
  return {
    stack,
    chaos,
    template,
    resources: template.toJSON().Resources as Record<string, Resource>,
    ids: {
      asg: id(parts.asg),
      lb: id(parts.lb),
      cluster: id(parts.cluster),
      fn: id(parts.worker.function),
      alarm: id(parts.alarm),
      dlqAlarm: id(parts.dlqAlarm),
    },
  };
}

interface FixtureParts {
  readonly vpc: ec2.Vpc;
  readonly asg: autoscaling.AutoScalingGroup;
  readonly lb: elbv2.ApplicationLoadBalancer;
  readonly cluster: rds.DatabaseCluster;
  readonly worker: WorkerFunction;
  readonly alarm: cloudwatch.CompositeAlarm;
  readonly dlqAlarm: cloudwatch.Alarm;
}

function fixtureParts(stack: Stack): FixtureParts {
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    availabilityZones: AZS,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'Public', subnetType: ec2.SubnetType.PUBLIC },
      { name: 'App', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      { name: 'Data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    ],
  });
  const asg = new autoscaling.AutoScalingGroup(stack, 'Fleet', {
    vpc,
    autoScalingGroupName: 'Shop-checkout',
    launchTemplate: new ec2.LaunchTemplate(stack, 'LaunchTemplate', {
      instanceType: new ec2.InstanceType('t4g.small'),
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
    }),
  });
  const lb = new elbv2.ApplicationLoadBalancer(stack, 'LoadBalancer', { vpc, internetFacing: true });
  const cluster = new rds.DatabaseCluster(stack, 'Database', {
    engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_4 }),
    writer: rds.ClusterInstance.provisioned('Writer', { availabilityZone: IMPAIRED_AZ }),
    readers: [rds.ClusterInstance.provisioned('Reader', { availabilityZone: 'us-east-1b' })],
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  });
  const worker = new WorkerFunction(stack, 'Worker', {
    entry: join(REPO_ROOT, 'lambda', 'certificate-probe', 'index.ts'),
    serviceName: 'probe',
    timeout: Duration.seconds(20),
    memorySize: 256,
    reservedConcurrency: 2,
  });
  const metricAlarm = (id: string) =>
    new cloudwatch.Alarm(stack, id, {
      metric: new cloudwatch.Metric({ namespace: 'Test', metricName: id }),
      threshold: 1,
      evaluationPeriods: 1,
      alarmDescription: `${id}. Runbook: docs/runbooks/${id}.md`,
    });
  const alarm = new cloudwatch.CompositeAlarm(stack, 'CheckoutImpaired', {
    alarmRule: cloudwatch.AlarmRule.fromAlarm(metricAlarm('Errors'), cloudwatch.AlarmState.ALARM),
    alarmDescription: 'Checkout impaired. Runbook: docs/runbooks/fleet-checkout-impaired.md',
  });
  return { vpc, asg, lb, cluster, worker, alarm, dlqAlarm: metricAlarm('DeadLetters') };
}

/** The experiment templates by their Name tag's experiment key (`<stack>-<key>`). */
function templatesByKey(f: Fixture): Record<string, Resource> {
  return Object.fromEntries(
    Object.values(f.resources)
      .filter((r) => r.Type === 'AWS::FIS::ExperimentTemplate')
      .map((r) => [String(r.Properties.Tags.Name).replace(/^Shop-/, ''), r]),
  );
}

/** The managed policy of an experiment's role. */
function policyOf(f: Fixture, experiment: Resource): { Statement: Json[] } {
  const roleId = experiment.Properties.RoleArn['Fn::GetAtt'][0] as string;
  const policies = Object.values(f.resources).filter(
    (r) =>
      r.Type === 'AWS::IAM::ManagedPolicy' && (r.Properties.Roles ?? []).some((x: Json) => x.Ref === roleId),
  );
  expect(policies).toHaveLength(1);
  return policies[0].Properties.PolicyDocument;
}

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** Logical ids a CloudFormation value refers to (Ref and GetAtt, at any depth). */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.Ref === 'string') return [o.Ref];
    if (Array.isArray(o['Fn::GetAtt'])) return [o['Fn::GetAtt'][0] as string];
    return Object.values(o).flatMap(refsIn);
  }
  return [];
}

const EXPERIMENTS = [
  'stop-az-instances',
  'aurora-failover',
  'fleet-cpu-stress',
  'az-network-disruption',
  'lambda-invocation-errors',
  'az-power-interruption',
];

describe('ChaosExperiments', () => {
  const f = fixture();
  const templates = templatesByKey(f);

  test('builds one experiment template per experiment, named <stack>-<experiment>', () => {
    expect(Object.keys(templates).sort()).toEqual([...EXPERIMENTS].sort());
    expect(Object.keys(f.chaos.templates).sort()).toEqual([...EXPERIMENTS].sort());
  });

  describe.each(EXPERIMENTS)('%s', (key) => {
    const experiment = () => templates[key].Properties;

    test('is stopped by the stop alarm (first) and logs to the encrypted experiment log group, schema 2', () => {
      expect(experiment().StopConditions[0]).toEqual({
        Source: 'aws:cloudwatch:alarm',
        Value: { 'Fn::GetAtt': [f.ids.alarm, 'Arn'] },
      });
      const logGroupId = f.stack.getLogicalId(f.chaos.logGroup.node.defaultChild as never);
      expect(experiment().LogConfiguration).toEqual({
        CloudWatchLogsConfiguration: { LogGroupArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] } },
        LogSchemaVersion: 2,
      });
    });

    test('every action acts on targets the template defines, and every target is acted on', () => {
      const targets = Object.keys(experiment().Targets);
      const used = Object.values(experiment().Actions as Record<string, Json>).flatMap((a) =>
        Object.values((a.Targets ?? {}) as Record<string, string>),
      );
      expect([...new Set(used)].sort()).toEqual([...targets].sort());
      for (const a of Object.values(experiment().Actions as Record<string, Json>)) {
        for (const after of a.StartAfter ?? []) expect(Object.keys(experiment().Actions)).toContain(after);
      }
    });

    test('runs in this account only and has a description FIS accepts', () => {
      expect(experiment().ExperimentOptions.AccountTargeting).toBe('single-account');
      expect(experiment().Description.length).toBeLessThanOrEqual(512);
      expect(experiment().Description).toMatch(/Hypothesis: \S/);
    });

    test('carries its game-day notes in its Metadata', () => {
      const notes = templates[key].Metadata?.[GAME_DAY_METADATA] as GameDayNotes;
      expect(notes.title).not.toBe('');
      expect(notes.hypothesis.length).toBeGreaterThan(40);
      expect(notes.blastRadius).not.toBe('');
      expect(notes.mustHold.length).toBeGreaterThan(0);
      expect(notes.watch.length).toBeGreaterThan(0);
    });

    test('runs as a role of its own that only FIS experiments of this account and region may assume', () => {
      const roleId = experiment().RoleArn['Fn::GetAtt'][0];
      const others = Object.entries(templates).filter(([k]) => k !== key);
      expect(others.map(([, t]) => t.Properties.RoleArn['Fn::GetAtt'][0])).not.toContain(roleId);
      const role = f.resources[roleId];
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'fis.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': '111111111111' },
            ArnLike: { 'aws:SourceArn': 'arn:aws:fis:us-east-1:111111111111:experiment/*' },
          },
        },
      ]);
      // One customer managed policy of its own: no AWS managed policy, no inline policy.
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      expect(role.Properties.Policies).toBeUndefined();
      policyOf(f, templates[key]);
    });

    test('its policy grants no action wildcard, and * only to actions without resource-level permissions', () => {
      const statements = policyOf(f, templates[key]).Statement;
      expect(statements.flatMap((s) => asArray(s.Action)).filter((a: string) => a.includes('*'))).toEqual([]);
      // Actions IAM authorizes on no narrower resource; the mutating ones must carry a condition.
      const readOnly = new Set([
        'logs:CreateLogDelivery',
        'tag:GetResources',
        'ec2:DescribeInstances',
        'ec2:DescribeVpcs',
        'ec2:DescribeSubnets',
        'ec2:DescribeNetworkAcls',
        'ec2:DescribeManagedPrefixLists',
        'ec2:GetManagedPrefixListEntries',
        'ssm:ListCommands',
        'ssm:CancelCommand',
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeTags',
        'arc-zonal-shift:ListManagedResources',
      ]);
      const conditioned = new Set([
        'ec2:InjectApiError',
        'arc-zonal-shift:StartZonalShift',
        'arc-zonal-shift:UpdateZonalShift',
        'arc-zonal-shift:CancelZonalShift',
        'arc-zonal-shift:GetManagedResource',
      ]);
      for (const s of statements.filter((x) => asArray(x.Resource).includes('*'))) {
        for (const action of asArray<string>(s.Action)) {
          if (conditioned.has(action)) expect(s.Condition).toBeDefined();
          else expect(readOnly).toContain(action);
        }
      }
    });
  });

  test('stop-az-instances stops the running fleet instances of one AZ and starts them after 10 minutes', () => {
    const p = templates['stop-az-instances'].Properties;
    expect(p.Actions).toEqual({
      StopInstances: {
        ActionId: 'aws:ec2:stop-instances',
        Description: expect.any(String),
        Parameters: { startInstancesAfterDuration: 'PT10M', completeIfInstancesTerminated: 'true' },
        Targets: { Instances: 'FleetInstancesInAz' },
      },
    });
    expect(p.Targets.FleetInstancesInAz).toEqual({
      ResourceType: 'aws:ec2:instance',
      ResourceTags: { [ASG_INSTANCE_TAG]: { Ref: f.ids.asg } },
      Filters: [
        { Path: 'Placement.AvailabilityZone', Values: [IMPAIRED_AZ] },
        { Path: 'State.Name', Values: ['running'] },
      ],
      SelectionMode: 'ALL',
    });
    expect(p.ExperimentOptions.EmptyTargetResolutionMode).toBe('fail');
  });

  test('aurora-failover fails over the cluster, named by ARN', () => {
    const p = templates['aurora-failover'].Properties;
    expect(Object.values(p.Actions as Record<string, Json>).map((a) => [a.ActionId, a.Targets])).toEqual([
      ['aws:rds:failover-db-cluster', { Clusters: 'Cluster' }],
    ]);
    expect(p.Targets.Cluster.ResourceType).toBe('aws:rds:cluster');
    expect(refsIn(p.Targets.Cluster.ResourceArns)).toEqual([f.ids.cluster]);
    expect(p.Targets.Cluster.SelectionMode).toBe('ALL');
  });

  test('fleet-cpu-stress runs AWSFIS-Run-CPU-Stress through SSM on every running fleet instance for 10 minutes', () => {
    const p = templates['fleet-cpu-stress'].Properties;
    const action = p.Actions.StressCpu;
    expect(action.ActionId).toBe('aws:ssm:send-command');
    expect(action.Parameters.documentArn).toBe('arn:aws:ssm:us-east-1::document/AWSFIS-Run-CPU-Stress');
    expect(JSON.parse(action.Parameters.documentParameters)).toEqual({
      DurationSeconds: '600',
      CPU: '0',
      LoadPercent: '80',
      InstallDependencies: 'True',
    });
    // FIS watches the command a minute longer than the command runs.
    expect(action.Parameters.duration).toBe('PT11M');
    expect(p.Targets.FleetInstances).toEqual({
      ResourceType: 'aws:ec2:instance',
      ResourceTags: { [ASG_INSTANCE_TAG]: { Ref: f.ids.asg } },
      Filters: [{ Path: 'State.Name', Values: ['running'] }],
      SelectionMode: 'ALL',
    });
  });

  test('az-network-disruption denies all traffic of the application subnet of the AZ, and only that one', () => {
    const p = templates['az-network-disruption'].Properties;
    expect(p.Actions.DisruptConnectivity).toMatchObject({
      ActionId: 'aws:network:disrupt-connectivity',
      Parameters: { scope: 'all', duration: 'PT5M' },
      Targets: { Subnets: 'AppSubnetsInAz' },
    });
    const subnets = refsIn(p.Targets.AppSubnetsInAz.ResourceArns);
    expect(subnets).toHaveLength(1);
    expect(f.resources[subnets[0]].Type).toBe('AWS::EC2::Subnet');
    expect(f.resources[subnets[0]].Properties.AvailabilityZone).toBe(IMPAIRED_AZ);
    expect(f.resources[subnets[0]].Properties.Tags).toContainEqual({
      Key: 'aws-cdk:subnet-name',
      Value: 'App',
    });
  });

  test('lambda-invocation-errors fails every invocation of the workers before the handler, and stops on their DLQ alarm too', () => {
    const p = templates['lambda-invocation-errors'].Properties;
    expect(p.Actions.FailInvocations).toMatchObject({
      ActionId: 'aws:lambda:invocation-error',
      Parameters: { duration: 'PT5M', invocationPercentage: '100', preventExecution: 'true' },
      Targets: { Functions: 'Workers' },
    });
    expect(p.Targets.Workers.ResourceType).toBe('aws:lambda:function');
    expect(refsIn(p.Targets.Workers.ResourceArns)).toEqual([f.ids.fn]);
    expect(p.StopConditions[1]).toEqual({
      Source: 'aws:cloudwatch:alarm',
      Value: { 'Fn::GetAtt': [f.ids.dlqAlarm, 'Arn'] },
    });
  });

  describe('az-power-interruption', () => {
    const p = () => templates['az-power-interruption'].Properties;

    test('stops the AZ, fails launches there, cuts its subnets, fails the writer over and ends in a zonal autoshift', () => {
      const actions = p().Actions;
      expect(
        Object.fromEntries(Object.entries(actions as Record<string, Json>).map(([k, a]) => [k, a.ActionId])),
      ).toEqual({
        StopInstances: 'aws:ec2:stop-instances',
        PauseLaunchesInAz: 'aws:ec2:asg-insufficient-instance-capacity-error',
        DisruptSubnets: 'aws:network:disrupt-connectivity',
        FailoverDatabase: 'aws:rds:failover-db-cluster',
        WaitBeforeAutoshift: 'aws:fis:wait',
        StartZonalAutoshift: 'aws:arc:start-zonal-autoshift',
      });
      expect(actions.StopInstances.Parameters.startInstancesAfterDuration).toBe('PT30M');
      expect(actions.PauseLaunchesInAz.Parameters).toEqual({
        availabilityZoneIdentifiers: IMPAIRED_AZ,
        duration: 'PT30M',
        percentage: '100',
      });
      expect(actions.DisruptSubnets.Parameters).toEqual({ scope: 'all', duration: 'PT2M' });
      expect(actions.WaitBeforeAutoshift.Parameters).toEqual({ duration: 'PT5M' });
      // The autoshift starts after the wait and lasts until the end of the 30 minutes.
      expect(actions.StartZonalAutoshift).toMatchObject({
        StartAfter: ['WaitBeforeAutoshift'],
        Parameters: {
          availabilityZoneIdentifier: IMPAIRED_AZ,
          duration: 'PT25M',
          managedResourceTypes: 'ALB',
          zonalAutoshiftStatus: 'ENABLED',
        },
        Targets: { ManagedResources: 'LoadBalancer' },
      });
    });

    test('every zonal target is limited to the AZ', () => {
      const targets = p().Targets;
      expect(targets.FleetInstancesInAz.Filters).toContainEqual({
        Path: 'Placement.AvailabilityZone',
        Values: [IMPAIRED_AZ],
      });
      const subnets = refsIn(targets.SubnetsInAz.ResourceArns);
      expect(subnets).toHaveLength(3);
      expect(subnets.map((s) => f.resources[s].Properties.AvailabilityZone)).toEqual([
        IMPAIRED_AZ,
        IMPAIRED_AZ,
        IMPAIRED_AZ,
      ]);
      expect(targets.DatabaseWriterInAz.Parameters).toEqual({
        writerAvailabilityZoneIdentifiers: IMPAIRED_AZ,
      });
    });

    test('skips an action whose target is empty (the writer elsewhere), instead of failing the run', () => {
      expect(p().ExperimentOptions.EmptyTargetResolutionMode).toBe('skip');
    });

    test('limits the injected launch errors to the fleet group and the shifts to the load balancer', () => {
      const statements = policyOf(f, templates['az-power-interruption']).Statement;
      expect(statements.find((s) => s.Action === 'ec2:InjectApiError')!.Condition).toEqual({
        StringEquals: { 'ec2:FisActionId': 'aws:ec2:asg-insufficient-instance-capacity-error' },
        'ForAllValues:ArnLike': {
          'ec2:FisTargetArns': [
            {
              'Fn::Join': [
                '',
                [
                  'arn:aws:autoscaling:us-east-1:111111111111:autoScalingGroup:*:autoScalingGroupName/',
                  { Ref: f.ids.asg },
                ],
              ],
            },
          ],
        },
      });
      expect(
        statements.find((s) => asArray(s.Action).includes('arc-zonal-shift:StartZonalShift'))!.Condition,
      ).toEqual({ StringEquals: { 'arc-zonal-shift:ResourceIdentifier': { Ref: f.ids.lb } } });
    });
  });

  describe('selects resources that exist in the stack', () => {
    test('instances by the tag Auto Scaling gives them, whose value is the group', () => {
      for (const key of ['stop-az-instances', 'fleet-cpu-stress', 'az-power-interruption']) {
        const targets = Object.values(templates[key].Properties.Targets) as Json[];
        const instances = targets.filter((t) => t.ResourceType === 'aws:ec2:instance');
        expect(instances.length).toBeGreaterThan(0);
        for (const t of instances) expect(t.ResourceTags).toEqual({ [ASG_INSTANCE_TAG]: { Ref: f.ids.asg } });
      }
      expect(f.resources[f.ids.asg].Type).toBe('AWS::AutoScaling::AutoScalingGroup');
    });

    test('the group and the cluster by a tag they carry', () => {
      const targets = templates['az-power-interruption'].Properties.Targets;
      expect(targets.FleetGroup.ResourceTags).toEqual({ [FIS_TARGET_TAG]: 'Shop/checkout-fleet' });
      expect(f.resources[f.ids.asg].Properties.Tags).toContainEqual({
        Key: FIS_TARGET_TAG,
        Value: 'Shop/checkout-fleet',
        PropagateAtLaunch: false,
      });
      expect(targets.DatabaseWriterInAz.ResourceTags).toEqual({ [FIS_TARGET_TAG]: 'Shop/database' });
      expect(f.resources[f.ids.cluster].Properties.Tags).toContainEqual({
        Key: FIS_TARGET_TAG,
        Value: 'Shop/database',
      });
    });

    test('the load balancer, the cluster and the function by their ARN', () => {
      const targets = templates['az-power-interruption'].Properties.Targets;
      expect(targets.LoadBalancer).toEqual({
        ResourceType: 'aws:arc:zonal-shift-managed-resource',
        ResourceArns: [{ Ref: f.ids.lb }],
        SelectionMode: 'ALL',
      });
      expect(f.resources[f.ids.lb].Type).toBe('AWS::ElasticLoadBalancingV2::LoadBalancer');
      expect(f.resources[f.ids.cluster].Type).toBe('AWS::RDS::DBCluster');
      expect(f.resources[f.ids.fn].Type).toBe('AWS::Lambda::Function');
    });
  });

  describe('Lambda instrumentation', () => {
    const bucketId = () => f.stack.getLogicalId(f.chaos.faultConfigBucket!.node.defaultChild as never);

    test('the worker runs through the FIS extension and reads its configurations from the bucket', () => {
      const fn = f.resources[f.ids.fn].Properties;
      expect(fn.Environment.Variables.AWS_LAMBDA_EXEC_WRAPPER).toBe('/opt/aws-fis/bootstrap');
      expect(fn.Environment.Variables.AWS_FIS_CONFIGURATION_LOCATION).toEqual({
        'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId(), 'Arn'] }, `/${FAULT_CONFIG_PREFIX}`]],
      });
      // The layer ARN comes from the public SSM parameter, resolved at deploy time.
      expect(fn.Layers).toHaveLength(1);
      const parameter = refsIn(fn.Layers)[0];
      expect(f.template.toJSON().Parameters[parameter]).toEqual({
        Type: 'AWS::SSM::Parameter::Value<String>',
        Default: FIS_EXTENSION_LAYER_PARAMETER,
      });
    });

    test("the worker's role may list and read the prefix, nothing else of the bucket", () => {
      f.template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Sid: 'ListFaultConfigurations',
              Action: 's3:ListBucket',
              Effect: 'Allow',
              Resource: { 'Fn::GetAtt': [bucketId(), 'Arn'] },
              Condition: { StringLike: { 's3:prefix': [`${FAULT_CONFIG_PREFIX}*`] } },
            },
            {
              Sid: 'ReadFaultConfigurations',
              Action: 's3:GetObject',
              Effect: 'Allow',
              Resource: {
                'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId(), 'Arn'] }, `/${FAULT_CONFIG_PREFIX}*`]],
              },
            },
          ]),
        },
      });
    });

    test('only the Lambda experiment role may write fault configurations', () => {
      const roleId = templates['lambda-invocation-errors'].Properties.RoleArn['Fn::GetAtt'][0];
      f.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: bucketId() },
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Sid: 'OnlyTheExperimentWritesFaultConfigurations',
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: ['s3:DeleteObject', 's3:PutObject'],
              Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId(), 'Arn'] }, '/*']] },
              Condition: { ArnNotEquals: { 'aws:PrincipalArn': { 'Fn::GetAtt': [roleId, 'Arn'] } } },
            },
          ]),
        },
      });
      expect(
        policyOf(f, templates['lambda-invocation-errors']).Statement.find(
          (s) => s.Sid === 'WriteFaultConfigurations',
        ),
      ).toMatchObject({ Action: expect.arrayContaining(['s3:PutObject', 's3:DeleteObject']) });
    });
  });

  test('logs to a KMS-encrypted log group under /aws/vendedlogs/, kept a year', () => {
    f.template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/fis/Shop',
      RetentionInDays: 365,
      KmsKeyId: { 'Fn::GetAtt': [f.stack.getLogicalId(f.chaos.logKey.node.defaultChild as never), 'Arn'] },
    });
  });
});

describe('ChaosExperiments options', () => {
  test('without a failover cluster: no failover experiment, and no failover in the power interruption', () => {
    const f = fixture(() => ({ failoverCluster: undefined }));
    const templates = templatesByKey(f);
    expect(Object.keys(templates)).not.toContain('aurora-failover');
    expect(Object.keys(templates['az-power-interruption'].Properties.Actions)).not.toContain(
      'FailoverDatabase',
    );
    expect(Object.keys(templates['az-power-interruption'].Properties.Targets)).not.toContain(
      'DatabaseWriterInAz',
    );
  });

  test('without Lambda targets: no Lambda experiment, no bucket, the worker is not instrumented', () => {
    const f = fixture(() => ({ lambdaFaults: undefined }));
    expect(Object.keys(templatesByKey(f))).not.toContain('lambda-invocation-errors');
    f.template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(f.resources[f.ids.fn].Properties.Layers).toBeUndefined();
  });

  test('a load balancer not enabled for autoshift is shifted anyway (zonal shift of any status)', () => {
    const f = fixture(() => ({ zonalAutoshiftEnabled: false }));
    const autoshift = templatesByKey(f)['az-power-interruption'].Properties.Actions.StartZonalAutoshift;
    expect(autoshift.Parameters.zonalAutoshiftStatus).toBe('ANY');
  });

  test('refuses an AZ the VPC does not span', () => {
    expect(() => fixture(() => ({ availabilityZone: 'us-east-1d' }))).toThrow(
      /availabilityZone us-east-1d is not one of the VPC's AZs \(us-east-1a, us-east-1b, us-east-1c\)/,
    );
  });

  test('refuses a group or a cluster it cannot tag', () => {
    expect(() =>
      fixture((parts) => ({
        autoScalingGroup: autoscaling.AutoScalingGroup.fromAutoScalingGroupName(
          parts.vpc,
          'Imported',
          'other',
        ),
      })),
    ).toThrow(/autoScalingGroup must be a group created in this app/);
    expect(() =>
      fixture((parts) => ({
        failoverCluster: rds.DatabaseCluster.fromDatabaseClusterAttributes(parts.vpc, 'ImportedDb', {
          clusterIdentifier: 'other',
        }),
      })),
    ).toThrow(/failoverCluster must be a cluster created in this app/);
  });

  test('refuses an empty list of Lambda targets', () => {
    expect(() => fixture(() => ({ lambdaFaults: { functions: [] } }))).toThrow(
      /lambdaFaults.functions is empty/,
    );
  });

  test('a fault configuration prefix must be a folder: no leading slash, a trailing one', () => {
    for (const prefix of ['/FisConfigs/', 'FisConfigs']) {
      expect(() =>
        fixture((parts) => {
          parts.worker.enableFaultInjection({ bucket: new s3.Bucket(parts.vpc, 'Other'), prefix });
          return {};
        }),
      ).toThrow(/must not start with "\/" and must end with "\/"/);
    }
  });

  test('a worker is instrumented once', () => {
    expect(() =>
      fixture((parts) => {
        parts.worker.enableFaultInjection({ bucket: new s3.Bucket(parts.vpc, 'Other'), prefix: 'Other/' });
        return {};
      }),
    ).toThrow(/Shop\/Worker: enableFaultInjection was already called/);
  });
});

describe('ChaosExperiments compliance', () => {
  // GIVEN the fixture with every compliance pack registered
  const app = newApp();
  addCompliancePacks(app);
  const stack = new Stack(app, 'Shop', { env: ENV });
  const parts = fixtureParts(stack);
  new ChaosExperiments(stack, 'Chaos', {
    stopAlarm: parts.alarm,
    vpc: parts.vpc,
    availabilityZone: IMPAIRED_AZ,
    autoScalingGroup: parts.asg,
    loadBalancer: parts.lb,
    failoverCluster: parts.cluster,
    lambdaFaults: { functions: [parts.worker] },
  });
  // WHEN synthesized
  const { outdir, findings } = synthFindings(app);
  const ours = (path: string) =>
    path.startsWith('Shop/Chaos/') || path === 'Shop/Worker/Role/Policy/Resource';

  test('no pack reports anything about the experiments, their roles, logs or bucket, or the instrumentation', () => {
    // THEN the packs ran (the fixture's bare stand-ins have findings), and the construct has none
    expect(findings.length).toBeGreaterThan(0);
    expect(
      findings.filter((x) => x.paths.some(ours)).map((x) => `${x.plugin} ${x.rule} ${x.paths.filter(ours)}`),
    ).toEqual([]);
  });

  (hasCfnLint ? test : test.skip)('cfn-lint accepts the experiment templates and their roles', () => {
    const file = join(outdir, 'Shop.template.json');
    const resources = (JSON.parse(readFileSync(file, 'utf8')) as { Resources: Record<string, Resource> })
      .Resources;
    const chaosIds = new Set(
      Object.entries(resources)
        .filter(([, r]) => String(r.Metadata?.['aws:cdk:path'] ?? '').startsWith('Shop/Chaos/'))
        .map(([logicalId]) => logicalId),
    );
    expect(chaosIds.size).toBeGreaterThan(10);
    // Matches about the fixture's stand-ins (a bare VPC, group, load balancer) are not ours.
    const located = cfnLint([file]) as (CfnLintMatch & { Location?: { Path?: unknown[] } })[];
    const matches = located.filter((m) => chaosIds.has(String(m.Location?.Path?.[1])));
    expect(matches.map((m) => `${m.Level} ${m.Rule.Id}: ${m.Message}`)).toEqual([]);
  });
});

describe('ChaosExperiments in the shipped app', () => {
  // Built once per shipped config (as docs/game-day.md is rendered from them).
  const shipped: Record<string, StackTemplate[]> = {};
  beforeAll(() => {
    for (const name of ['default', 'lean']) shipped[name] = synthesizeShippedConfig(name);
  }, 600_000);

  const experiments = (stack: StackTemplate) =>
    Object.values(stack.resources).filter((r) => r.Type === 'AWS::FIS::ExperimentTemplate') as Resource[];
  const byPath = (stack: StackTemplate, path: string) =>
    Object.entries(stack.resources).find(
      ([, r]) => r.Metadata?.['aws:cdk:path'] === `${stack.stackName}/${path}`,
    )?.[0];

  test.each([
    ['default', 'ResilientShop-Primary', 6, true],
    ['default', 'ResilientShop-Standby', 5, false],
    ['lean', 'ResilientShop-Primary', 5, false],
  ])('%s: %s deploys %d experiments, with an Aurora failover: %s', (config, stackName, count, failover) => {
    const stack = shipped[config].find((s) => s.stackName === stackName)!;
    const names = experiments(stack).map((e) => String(e.Properties.Tags.Name).replace(`${stackName}-`, ''));
    expect(names).toHaveLength(count);
    expect(names.includes('aurora-failover')).toBe(failover);
    // The failover step of the power interruption exists where the failover experiment does.
    const power = experiments(stack).find((e) =>
      String(e.Properties.Tags.Name).endsWith('az-power-interruption'),
    )!;
    expect(Object.keys(power.Properties.Actions).includes('FailoverDatabase')).toBe(failover);
  });

  test.each(['default', 'lean'])(
    '%s: every experiment stops on the stack’s "checkout impaired" alarm and impairs the first AZ of config',
    (config) => {
      for (const stack of shipped[config]) {
        const impaired = byPath(stack, 'Monitoring/CheckoutImpaired/Resource')!;
        expect(stack.resources[impaired].Type).toBe('AWS::CloudWatch::CompositeAlarm');
        const cfg = shippedConfig(config as 'default' | 'lean');
        const region = stack.stackName.endsWith('-Standby') ? cfg.standby! : cfg.primary;
        const firstAz = region.availabilityZones[0];
        for (const e of experiments(stack)) {
          expect(e.Properties.StopConditions[0].Value).toEqual({ 'Fn::GetAtt': [impaired, 'Arn'] });
          const zonal = JSON.stringify(e.Properties.Targets).match(/[a-z]{2}-[a-z]+-\d[a-z]/g) ?? [];
          expect(zonal.every((az) => az === firstAz)).toBe(true);
        }
      }
    },
  );

  test.each(['default', 'lean'])(
    '%s: the Lambda experiment fails the order-events worker and also stops on its dead-letter alarm',
    (config) => {
      for (const stack of shipped[config]) {
        const lambdaExperiment = experiments(stack).find((e) =>
          String(e.Properties.Tags.Name).endsWith('lambda-invocation-errors'),
        )!;
        const fn = byPath(stack, 'OrderEventsWorker/Worker/Function/Resource')!;
        expect(refsIn(lambdaExperiment.Properties.Targets.Workers.ResourceArns)).toEqual([fn]);
        expect(stack.resources[fn].Properties?.Environment.Variables.AWS_LAMBDA_EXEC_WRAPPER).toBe(
          '/opt/aws-fis/bootstrap',
        );
        const dlqAlarm = byPath(stack, 'OrderEvents/DeadLetters/Resource')!;
        expect(lambdaExperiment.Properties.StopConditions[1].Value).toEqual({
          'Fn::GetAtt': [dlqAlarm, 'Arn'],
        });
      }
    },
  );

  test('the autoshift follows the load balancer: ENABLED in production (autoshift on), ANY in lean', () => {
    const status = (stack: StackTemplate) =>
      experiments(stack).find((e) => String(e.Properties.Tags.Name).endsWith('az-power-interruption'))!
        .Properties.Actions.StartZonalAutoshift.Parameters.zonalAutoshiftStatus;
    expect(shipped.default.map(status)).toEqual(['ENABLED', 'ENABLED']);
    expect(shipped.lean.map(status)).toEqual(['ANY']);
  });
});
