import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Network } from '../../lib/constructs/network';
import { ResilientQueue } from '../../lib/constructs/resilient-queue';
import { SecurityGroups } from '../../lib/constructs/security-groups';
import {
  REPO_ROOT,
  WORKER_RUNTIME,
  WorkerFunction,
  WorkerFunctionProps,
} from '../../lib/constructs/worker-function';
import { newApp } from '../helpers/app';

const ENV = { account: '111111111111', region: 'us-east-1' };
const ENTRY = join(REPO_ROOT, 'lambda', 'certificate-probe', 'index.ts');

/**
 * The Docker CLI CDK would call to bundle in a container: a script that records that it
 * was called. Set before any synth of this file, so every bundling below is watched.
 */
const dockerCalls = join(mkdtempSync(join(tmpdir(), 'no-docker-')), 'calls');
const fakeDocker = join(dockerCalls, '..', 'docker');
writeFileSync(fakeDocker, `#!/bin/sh\necho "$@" >> '${dockerCalls}'\nexit 1\n`);
chmodSync(fakeDocker, 0o755);
process.env.CDK_DOCKER = fakeDocker;

function build(props: Partial<WorkerFunctionProps> = {}, withVpc = false) {
  const app = newApp();
  const stack = new Stack(app, 'Test', { env: ENV });
  const network = withVpc
    ? new Network(stack, 'Network', { availabilityZones: ['us-east-1a', 'us-east-1b'] })
    : undefined;
  const groups =
    network && new SecurityGroups(stack, 'Groups', { vpc: network.vpc, allowedIngressCidrs: ['10.0.0.0/8'] });
  const worker = new WorkerFunction(stack, 'Probe', {
    entry: ENTRY,
    serviceName: 'certificate-probe',
    timeout: Duration.seconds(20),
    memorySize: 256,
    reservedConcurrency: 3,
    vpc: network && groups ? { vpc: network.vpc, securityGroup: groups.lambda } : undefined,
    ...props,
  });
  return { app, stack, worker, groups };
}

const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

describe('WorkerFunction', () => {
  const { app, stack, worker } = build();
  const template = Template.fromStack(stack);
  const fn = () => Object.values(template.findResources('AWS::Lambda::Function'))[0].Properties;

  test('runs on the newest Node.js runtime aws-cdk-lib offers, on arm64', () => {
    const newest = lambda.Runtime.ALL.filter((r) => /^nodejs\d+\.x$/.test(r.name))
      .map((r) => r.name)
      .sort((a, b) => parseInt(b.slice(6)) - parseInt(a.slice(6)))[0];
    expect(WORKER_RUNTIME.name).toBe(newest);
    expect(fn()).toMatchObject({ Runtime: newest, Architectures: ['arm64'] });
  });

  test('has the explicit timeout, memory and reserved concurrency it was given', () => {
    expect(fn()).toMatchObject({ Timeout: 20, MemorySize: 256, ReservedConcurrentExecutions: 3 });
  });

  test('traces with X-Ray and sets the Powertools and source-map environment', () => {
    expect(fn().TracingConfig).toEqual({ Mode: 'Active' });
    expect(fn().Environment.Variables).toEqual({
      POWERTOOLS_SERVICE_NAME: 'certificate-probe',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  test('logs to its own log group, kept one year, encrypted with a key CloudWatch Logs may use', () => {
    expect(fn().LoggingConfig).toEqual({ LogGroup: { Ref: id(stack, worker.logGroup) } });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: 365,
      KmsKeyId: { 'Fn::GetAtt': [id(stack, worker.logEncryptionKey as never), 'Arn'] },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'logs.us-east-1.amazonaws.com' },
            Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  test('its role has no AWS managed policy and no inline policy: everything is in its own managed policy', () => {
    template.resourceCountIs('AWS::IAM::Policy', 0);
    const role = Object.values(template.findResources('AWS::IAM::Role'))[0].Properties;
    expect(role.ManagedPolicyArns).toEqual([{ Ref: id(stack, worker.policy) }]);
    expect(role.Policies).toBeUndefined();
    const statements = Object.values(template.findResources('AWS::IAM::ManagedPolicy'))[0].Properties
      .PolicyDocument.Statement;
    expect(statements).toEqual([
      {
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [id(stack, worker.logGroup), 'Arn'] },
      },
      { Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Effect: 'Allow', Resource: '*' },
    ]);
  });

  test('is bundled by the local esbuild, never Docker: minified, with a source map, the SDK clients left to the runtime', () => {
    // WHEN the app is synthesized (bundling runs)
    const assembly = app.synth();
    // THEN the Docker CLI was never called
    expect(existsSync(dockerCalls) ? readFileSync(dockerCalls, 'utf8') : '').toBe('');
    // ...and the asset holds a minified bundle and its map
    const key = (fn().Code.S3Key as string).replace(/\.zip$/, '');
    const dir = join(assembly.directory, `asset.${key}`);
    const bundle = readFileSync(join(dir, 'index.js'), 'utf8');
    expect(statSync(join(dir, 'index.js')).size).toBeLessThan(250 * 1024);
    expect(bundle.split('\n').length).toBeLessThan(20);
    expect(bundle).toMatch(/sourceMappingURL=index\.js\.map\s*$/);
    expect(bundle).toContain('require("@aws-sdk/client-cloudwatch")');
    const map = JSON.parse(readFileSync(join(dir, 'index.js.map'), 'utf8')) as { sources: string[] };
    expect(map.sources).toEqual(
      expect.arrayContaining([expect.stringMatching(/lambda\/certificate-probe\/probe\.ts$/)]),
    );
  });
});

describe('WorkerFunction in the VPC', () => {
  test('runs in the private subnets with egress, with the workers group, and may manage its network interfaces', () => {
    const { stack, groups, worker } = build({}, true);
    const template = Template.fromStack(stack);
    const fn = template.toJSON().Resources[id(stack, worker.function)].Properties;
    expect(fn.VpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [id(stack, groups!.lambda), 'GroupId'] }]);
    const appSubnets = Object.keys(template.findResources('AWS::EC2::Subnet')).filter((k) =>
      k.includes('AppSubnet'),
    );
    expect(fn.VpcConfig.SubnetIds.map((s: { Ref: string }) => s.Ref).sort()).toEqual(appSubnets.sort());
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'ManageVpcNetworkInterfaces',
            Action: Match.arrayWith(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']),
          }),
        ]),
      },
    });
  });
});

describe('WorkerFunction.consume', () => {
  const queueFor = (stack: Stack, consumerTimeout: Duration) =>
    new ResilientQueue(stack, 'Queue', { consumerTimeout, queueProps: { queueName: 'shop-order-events' } });

  test('reports batch item failures, with the event source capped at the reserved concurrency', () => {
    const { stack, worker } = build();
    worker.consume(queueFor(stack, Duration.seconds(20)));
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
      ScalingConfig: { MaximumConcurrency: 3 },
    });
  });

  test("refuses a queue whose visibility timeout is under 6 x the function's timeout, naming both", () => {
    const { stack, worker } = build();
    expect(() => worker.consume(queueFor(stack, Duration.seconds(10)))).toThrow(
      /cannot consume shop-order-events: its visibility timeout 60 s is less than 6 x the function's timeout 20 s = 120 s; give the ResilientQueue consumerTimeout: Duration.seconds\(20\)/,
    );
  });

  test('refuses a reserved concurrency below 2 (the smallest maximum concurrency of an SQS source)', () => {
    const { stack, worker } = build({ reservedConcurrency: 1 });
    expect(() => worker.consume(queueFor(stack, Duration.seconds(20)))).toThrow(
      /reservedConcurrency 1 is below 2/,
    );
  });

  test('refuses a reserved concurrency of 0 (a function that never runs)', () => {
    expect(() => build({ reservedConcurrency: 0 })).toThrow(
      /reservedConcurrency must be a whole number of at least 1, got 0/,
    );
  });
});

test('subnets can be chosen', () => {
  const app = newApp();
  const stack = new Stack(app, 'Test', { env: ENV });
  const network = new Network(stack, 'Network', { availabilityZones: ['us-east-1a', 'us-east-1b'] });
  const groups = new SecurityGroups(stack, 'Groups', {
    vpc: network.vpc,
    allowedIngressCidrs: ['10.0.0.0/8'],
  });
  const worker = new WorkerFunction(stack, 'W', {
    entry: ENTRY,
    serviceName: 'x',
    timeout: Duration.seconds(10),
    memorySize: 128,
    reservedConcurrency: 2,
    vpc: {
      vpc: network.vpc,
      securityGroup: groups.lambda,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    },
  });
  const fn = Template.fromStack(stack).toJSON().Resources[id(stack, worker.function)].Properties;
  expect(JSON.stringify(fn.VpcConfig.SubnetIds)).toMatch(/DataSubnet/);
});
