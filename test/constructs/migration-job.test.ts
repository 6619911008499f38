import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Database } from '../../lib/constructs/database';
import {
  MIGRATION_CA_BUNDLE_PATH,
  MigrationJob,
  MigrationJobProps,
  certificateNames,
  defaultRdsCaBundle,
} from '../../lib/constructs/migration-job';
import { Network } from '../../lib/constructs/network';
import { SecurityGroups } from '../../lib/constructs/security-groups';
import { addCompliancePacks } from '../../lib/compliance';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { MIGRATIONS } from '../../service/db/migrations';
import { buildTestApp, newApp, shippedConfig } from '../helpers/app';
import { synthFindings } from '../helpers/gates';
import { egressGraph, ingressGraph } from '../helpers/ingress-graph';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NO_EGRESS_PLACEHOLDER = '255.255.255.255/32';

/** Logical id of a construct's CloudFormation resource. */
const idOf = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as ec2.CfnSecurityGroup);

/**
 * A stack's template as the synth wrote it (read back rather than synthesized again: a
 * finding elsewhere in the app must not keep these tests from reading it).
 */
function synthesized(outdir: string, stack: Stack): Template {
  return Template.fromJSON(JSON.parse(readFileSync(join(outdir, stack.templateFile), 'utf8')) as Json);
}

/** The resources of a type whose logical id starts with a prefix. */
function resourcesOf(template: Template, type: string, prefix = ''): [string, Json][] {
  return Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));
}

describe('MigrationJob in the shipped production app', () => {
  const { app, stacks } = buildTestApp(shippedConfig('default'));
  const stack = stacks.primary;
  const job = stack.migrationJob!;
  // One synth: the validation report (every pack) and the assets on disk.
  const { outdir, findings } = synthFindings(app);
  const template = synthesized(outdir, stack);
  const resources = template.toJSON().Resources as Record<string, Json>;
  const fn = idOf(stack, job.worker.function);
  const jobGroup = idOf(stack, job.securityGroup);
  const databaseGroup = idOf(stack, stack.securityGroups.database);
  const endpointGroup = idOf(stack, stack.network.endpointSecurityGroup);
  const trigger = resourcesOf(template, 'Custom::Trigger');

  test('exists in the primary only: the standby cluster is a read-only global secondary', () => {
    expect(trigger).toHaveLength(1);
    expect(stacks.standby!.migrationJob).toBeUndefined();
    const standby = synthesized(outdir, stacks.standby!);
    expect(Object.keys(standby.findResources('Custom::Trigger'))).toEqual([]);
    expect(Object.keys(standby.toJSON().Resources).filter((id) => id.includes('MigrationJob'))).toEqual([]);
  });

  test('runs in the private subnets with egress, with a security group of its own', () => {
    const vpcConfig = resources[fn].Properties.VpcConfig;
    expect(vpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [jobGroup, 'GroupId'] }]);
    const appSubnets = stack.network.vpc.privateSubnets.map((s) => ({
      Ref: stack.getLogicalId(s.node.defaultChild as ec2.CfnSubnet),
    }));
    expect(vpcConfig.SubnetIds).toEqual(appSubnets);
    // not the workers' shared group, which may reach the proxy and the internet
    expect(jobGroup).not.toBe(idOf(stack, stack.securityGroups.lambda));
  });

  test('its group opens exactly the cluster port to the cluster and 443 to the endpoints, nothing else', () => {
    const out = egressGraph(template).filter((e) => e.from === jobGroup && e.to !== NO_EGRESS_PLACEHOLDER);
    expect(out.sort((a, b) => a.fromPort - b.fromPort)).toEqual([
      { from: jobGroup, to: endpointGroup, protocol: 'tcp', fromPort: 443, toPort: 443 },
      { from: jobGroup, to: databaseGroup, protocol: 'tcp', fromPort: 5433, toPort: 5433 },
    ]);
    // nothing reaches the job; the cluster and the endpoints admit it on those ports only
    const ingress = ingressGraph(template);
    expect(ingress.filter((e) => e.to === jobGroup)).toEqual([]);
    expect(ingress.filter((e) => e.from === jobGroup).sort((a, b) => a.fromPort - b.fromPort)).toEqual([
      { to: endpointGroup, from: jobGroup, protocol: 'tcp', fromPort: 443, toPort: 443 },
      { to: databaseGroup, from: jobGroup, protocol: 'tcp', fromPort: 5433, toPort: 5433 },
    ]);
  });

  test('connects to the writer endpoint as shop_admin, trusting the RDS CAs shipped in its package', () => {
    const env = resources[fn].Properties.Environment.Variables;
    const cluster = idOf(stack, stack.database.cluster);
    expect(env).toMatchObject({
      DB_HOST: { 'Fn::GetAtt': [cluster, 'Endpoint.Address'] },
      DB_PORT: '5433',
      DB_NAME: 'postgres',
      DB_USER: 'shop_admin',
      DB_SECRET_ID: {
        Ref: stack.getLogicalId(stack.database.secret!.node.defaultChild as ec2.CfnSecurityGroup),
      },
      DB_STATEMENT_TIMEOUT_MS: '240000',
      DB_LOCK_TIMEOUT_MS: '10000',
      NODE_EXTRA_CA_CERTS: MIGRATION_CA_BUNDLE_PATH,
    });
    expect(resources[fn].Properties).toMatchObject({ Timeout: 300, ReservedConcurrentExecutions: 1 });
    // AND the package holds that bundle (the region's RDS roots) and the migrations' SQL
    const asset = join(outdir, `asset.${resources[fn].Properties.Code.S3Key.replace(/\.zip$/, '')}`);
    const bundle = readFileSync(join(asset, 'rds-ca-bundle.pem'), 'utf8');
    expect(certificateNames(bundle)).toEqual(
      expect.arrayContaining([
        'Amazon RDS us-east-1 Root CA RSA2048 G1',
        'Amazon RDS us-east-1 Root CA RSA4096 G1',
        'Amazon RDS us-east-1 Root CA ECC384 G1',
      ]),
    );
    const code = readFileSync(join(asset, 'index.js'), 'utf8');
    // The numbered migrations by name; the stored functions' names are hashed when the
    // package loads (service/db/sql-function.ts), so their tags and SQL are looked for.
    for (const m of MIGRATIONS.filter((m) => !m.name.startsWith('function-'))) expect(code).toContain(m.name);
    expect(MIGRATIONS.filter((m) => m.name.startsWith('function-'))).toHaveLength(2);
    for (const text of [
      'checkout-claim',
      'checkout-record-outcome',
      'RETURN QUERY',
      'INSERT INTO order_items',
    ]) {
      expect(code).toContain(text);
    }
    expect(code).toContain('CREATE TABLE inventory');
  });

  test('may read the master secret and decrypt it through Secrets Manager, nothing more', () => {
    const policy = resources[idOf(stack, job.worker.policy)].Properties.PolicyDocument.Statement as Json[];
    const secretStatements = policy.filter((s) => /secretsmanager|kms/.test(JSON.stringify(s.Action)));
    expect(secretStatements).toEqual([
      {
        Sid: 'ReadMasterSecret',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: {
          Ref: stack.getLogicalId(stack.database.secret!.node.defaultChild as ec2.CfnSecurityGroup),
        },
      },
      {
        Sid: 'DecryptMasterSecret',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: { 'Fn::GetAtt': [idOf(stack, stack.database.encryptionKey), 'Arn'] },
        Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' } },
      },
    ]);
    // no rds-db:connect (it logs in with the password), no other service
    const actions = policy.flatMap((s) => [s.Action].flat() as string[]);
    expect([...new Set(actions.map((a) => a.split(':')[0]))].sort()).toEqual([
      'ec2',
      'kms',
      'logs',
      'secretsmanager',
      'xray',
    ]);
    // and never through the key policy (a key policy naming a role of the same template)
    expect(
      JSON.stringify(resources[idOf(stack, stack.database.encryptionKey)].Properties.KeyPolicy),
    ).not.toContain(idOf(stack, job.worker.role));
  });

  test('runs on every change of its function (its current version), synchronously', () => {
    const [, custom] = trigger[0];
    const version = resourcesOf(template, 'AWS::Lambda::Version').find(
      ([, v]) => v.Properties.FunctionName.Ref === fn,
    )!;
    expect(custom.Properties).toMatchObject({
      HandlerArn: { Ref: version[0] },
      InvocationType: 'RequestResponse',
      ExecuteOnHandlerChange: true,
      // past the function's own 300 s, so its error (not the provider's timeout) is reported
      Timeout: '330000',
    });
  });

  test('runs after the writer, the reader, the proxy and its network path; the Auto Scaling group waits for it', () => {
    const [triggerId, custom] = trigger[0];
    const after = new Set(custom.DependsOn as string[]);
    const cluster = stack.database.cluster;
    const instances = cluster.node.children
      .filter((c) => c.node.defaultChild?.constructor.name === 'CfnDBInstance')
      .map((c) => idOf(stack, c));
    expect(instances).toHaveLength(2);
    const ruleIds = (type: string, pick: (p: Json) => boolean) =>
      resourcesOf(template, type)
        .filter(([, r]) => pick(r.Properties))
        .map(([id]) => id);
    const fromJob = (p: Json) => JSON.stringify(p.SourceSecurityGroupId).includes(jobGroup);
    const ofJob = (p: Json) => JSON.stringify(p.GroupId).includes(jobGroup);
    const required = [
      ...instances,
      idOf(stack, stack.database.proxy!),
      idOf(stack, stack.network.interfaceEndpoints.SecretsManager),
      ...ruleIds('AWS::EC2::SecurityGroupIngress', fromJob),
      ...ruleIds('AWS::EC2::SecurityGroupEgress', ofJob),
    ];
    expect(required.length).toBeGreaterThanOrEqual(7);
    expect(required.filter((id) => !after.has(id))).toEqual([]);
    // THEN the fleet's group is created or updated (instance refresh) only after the trigger succeeded
    const asg = resources[idOf(stack, stack.fleet.autoScalingGroup)];
    expect(asg.DependsOn).toContain(triggerId);
  });

  test('no pack reports anything about the job or the trigger provider', () => {
    expect(
      findings.filter((f) => f.paths.some((p) => /MigrationJob|AWSCDK\.Trigger/.test(p))).map((f) => f.rule),
    ).toEqual([]);
    expect(findings.filter((f) => f.plugin === 'ResilientShopWiring').map((f) => f.rule)).toEqual([]);
  });
});

describe('MigrationJob in the shipped lean app (no interface endpoints)', () => {
  const { app, stacks } = buildTestApp(shippedConfig('lean'));
  const stack: RegionalStack = stacks.primary;
  const template = synthesized(synthFindings(app).outdir, stack);
  const jobGroup = idOf(stack, stack.migrationJob!.securityGroup);

  test('reaches Secrets Manager through the NAT gateway: 443 to any IPv4 address, and the cluster port', () => {
    const out = egressGraph(template).filter((e) => e.from === jobGroup && e.to !== NO_EGRESS_PLACEHOLDER);
    expect(out.sort((a, b) => a.fromPort - b.fromPort)).toEqual([
      { from: jobGroup, to: '0.0.0.0/0', protocol: 'tcp', fromPort: 443, toPort: 443 },
      {
        from: jobGroup,
        to: idOf(stack, stack.securityGroups.database),
        protocol: 'tcp',
        fromPort: 5433,
        toPort: 5433,
      },
    ]);
  });

  test('the Auto Scaling group still waits for it', () => {
    const [triggerId] = Object.keys(template.findResources('Custom::Trigger'));
    expect(template.toJSON().Resources[idOf(stack, stack.fleet.autoScalingGroup)].DependsOn).toContain(
      triggerId,
    );
  });
});

describe('MigrationJob on its own', () => {
  /** A stack with a VPC, the security groups, a standalone cluster and a job. */
  function build(
    props: Partial<MigrationJobProps> = {},
    options: { region?: string; admitJob?: boolean } = {},
  ) {
    const app = newApp();
    addCompliancePacks(app);
    const region = options.region ?? 'us-east-1';
    const stack = new Stack(app, 'Jobs', { env: { account: '111111111111', region } });
    const azs = [`${region}a`, `${region}b`];
    const network = new Network(stack, 'Network', { availabilityZones: azs, natGateways: 1 });
    const groups = new SecurityGroups(stack, 'Groups', {
      vpc: network.vpc,
      allowedIngressCidrs: ['10.0.0.0/8'],
    });
    const database = new Database(stack, 'Database', {
      vpc: network.vpc,
      securityGroup: groups.database,
      proxySecurityGroup: groups.databaseProxy,
      availabilityZones: azs,
      readers: 0,
      protectData: false,
    });
    network.allowEndpointAccessFrom(
      database.rotationSecurityGroup!,
      'HTTPS from the secret rotation function',
    );
    const job = new MigrationJob(stack, 'MigrationJob', {
      vpc: network.vpc,
      database: {
        cluster: database.cluster,
        secret: database.secret!,
        port: database.port,
        masterUser: 'shop_admin',
      },
      secretsManagerEndpoint: network.interfaceEndpoints.SecretsManager,
      runAfter: [database.cluster],
      ...props,
    });
    if (options.admitJob ?? true)
      network.allowEndpointAccessFrom(job.securityGroup, 'HTTPS from the migration job');
    return { app, stack, job };
  }

  test("the wiring pack shows the job's path: without the endpoint admitting it, EndpointReach names the job", () => {
    // GIVEN a job whose security group the Secrets Manager endpoint does not admit
    const { app } = build({}, { admitJob: false });
    // WHEN synthesized THEN the wiring pack reports the job's function
    const reach = synthFindings(app).findings.filter((f) =>
      f.rule.startsWith('ResilientShopWiring-EndpointReach'),
    );
    expect(reach.map((f) => [f.rule, f.paths])).toEqual([
      [
        expect.stringMatching(
          /^ResilientShopWiring-EndpointReach\[secretsmanager:NetworkVpcSecretsManager[0-9A-F]{8}\]$/,
        ),
        ['Jobs/MigrationJob/Worker/Function/Resource'],
      ],
    ]);
  });

  test('a new package (as a new migration makes) is a new version, so the trigger runs again', () => {
    // GIVEN two jobs whose packages differ (here: the CA bundle they ship)
    const handlerOf = (props: Partial<MigrationJobProps>) => {
      const { app, stack } = build(props);
      const [trigger] = Object.values(
        synthesized(synthFindings(app).outdir, stack).findResources('Custom::Trigger'),
      );
      return trigger.Properties.HandlerArn.Ref as string;
    };
    const full = defaultRdsCaBundle();
    const usEast1Only = full
      .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!
      .filter((pem) => certificateNames(pem)[0].includes('us-east-1'))
      .join('\n');
    // THEN the trigger names another version
    expect(handlerOf({ rdsCaBundle: full })).not.toBe(handlerOf({ rdsCaBundle: usEast1Only }));
  });

  test.each<[string, Partial<MigrationJobProps>, RegExp]>([
    ['a timeout past 14 minutes', { timeout: Duration.minutes(15) }, /timeout 15 min is over 14 minutes/],
    [
      'a statement timeout as long as the timeout',
      { timeout: Duration.minutes(2), statementTimeout: Duration.minutes(2) },
      /statementTimeout 120 s must be shorter than the timeout 120 s/,
    ],
    [
      'a lock timeout as long as the statement timeout',
      { statementTimeout: Duration.seconds(30), lockTimeout: Duration.seconds(30) },
      /lockTimeout 30 s must be shorter than the statementTimeout 30 s/,
    ],
  ])('refuses %s', (_name, props, message) => {
    expect(() => build(props)).toThrow(message);
  });

  test("refuses a CA bundle without the stack region's RDS authorities, naming where to get them", () => {
    // GIVEN a region the default bundle does not cover, and a bundle of another region's CAs
    expect(() => build({}, { region: 'mx-central-1' })).toThrow(
      /rdsCaBundle has no RDS certificate authority of mx-central-1.*https:\/\/truststore\.pki\.rds\.amazonaws\.com\/mx-central-1\/mx-central-1-bundle\.pem/,
    );
    const euWest1 = defaultRdsCaBundle()
      .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!
      .filter((pem) => certificateNames(pem)[0].includes('eu-west-1'))
      .join('\n');
    expect(() => build({ rdsCaBundle: euWest1 })).toThrow(/no RDS certificate authority of us-east-1/);
  });
});
