import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import {
  FLEET_HOST_METRICS_NAMESPACE,
  Fleet,
  FleetProps,
  LAUNCH_HOOK_NAME,
} from '../../lib/constructs/fleet';
import { FLEET_PATHS, FLEET_UNITS, fileWrittenBy } from '../../lib/fleet/boot-script';
import * as timings from '../../lib/fleet/timings';
import { Network } from '../../lib/constructs/network';
import { SecurityGroups } from '../../lib/constructs/security-groups';
import { RegionalStack } from '../../lib/stacks/regional-stack';
import { COUNTERS } from '../../service/metrics';
import { buildTestApp, configWith, rawConfig, shippedConfig } from '../helpers/app';
import { ingressGraph } from '../helpers/ingress-graph';
import { wiringFindings } from '../nag/fixtures';
import { parseEnvironmentFile, unitValues, userDataOf } from '../helpers/user-data';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const production = buildTestApp(shippedConfig('default')).stacks;
const lean = buildTestApp(shippedConfig('lean')).stacks;
const templates = new Map<RegionalStack, Template>([
  [production.primary, Template.fromStack(production.primary)],
  [production.standby!, Template.fromStack(production.standby!)],
  [lean.primary, Template.fromStack(lean.primary)],
]);
const primary = templates.get(production.primary)!;
const standby = templates.get(production.standby!)!;
const leanPrimary = templates.get(lean.primary)!;
const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);
const resources = (template: Template) => template.toJSON().Resources as Record<string, Json>;
const group = (template: Template) =>
  Object.values(template.findResources('AWS::AutoScaling::AutoScalingGroup'))[0];
const launchData = (template: Template) =>
  Object.values(template.findResources('AWS::EC2::LaunchTemplate'))[0].Properties.LaunchTemplateData;
const environment = (template: Template) =>
  new Map(parseEnvironmentFile(fileWrittenBy(userDataOf(template), FLEET_PATHS.environmentFile)!));

describe('launch template', () => {
  test('requires IMDSv2 with a hop limit of 1', () => {
    expect(launchData(primary).MetadataOptions).toEqual({
      HttpEndpoint: 'enabled',
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 1,
      InstanceMetadataTags: 'disabled',
    });
  });

  test('boots Amazon Linux 2023 for arm64 from the public SSM parameter (no lookup at synth), on Graviton', () => {
    const data = launchData(primary);
    const parameter = primary.toJSON().Parameters[data.ImageId.Ref];
    expect(parameter).toEqual({
      Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>',
      Default: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64',
    });
    expect(data.InstanceType).toBe('m7g.large');
    expect(launchData(leanPrimary).InstanceType).toBe('t4g.small');
  });

  test('has an encrypted gp3 root volume, detailed monitoring, no key pair', () => {
    const data = launchData(primary);
    expect(data.BlockDeviceMappings).toEqual([
      {
        DeviceName: '/dev/xvda',
        Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: 20, VolumeType: 'gp3' },
      },
    ]);
    expect(data.Monitoring).toEqual({ Enabled: true });
    expect(data.KeyName).toBeUndefined();
    primary.resourceCountIs('AWS::EC2::KeyPair', 0);
  });

  test('runs in the app group, which only the load balancer group reaches, on the app port only', () => {
    for (const [stack, template] of templates) {
      const app = id(stack, stack.securityGroups.app);
      expect(launchData(template).SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [app, 'GroupId'] }]);
      expect(ingressGraph(template).filter((e) => e.to === app)).toEqual([
        {
          to: app,
          from: id(stack, stack.securityGroups.loadBalancer),
          protocol: 'tcp',
          fromPort: 8080,
          toPort: 8080,
        },
      ]);
    }
  });
});

describe('Auto Scaling group', () => {
  test('spans the three private app subnets', () => {
    const stack = production.primary;
    const subnets = stack.network.vpc.selectSubnets({
      subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS,
    }).subnets;
    expect(subnets).toHaveLength(3);
    expect(group(primary).Properties.VPCZoneIdentifier).toEqual(subnets.map((s) => ({ Ref: id(stack, s) })));
  });

  test('replaces instances on ELB health checks, after a grace period that starts once the instance is ready', () => {
    expect(group(primary).Properties).toMatchObject({ HealthCheckType: 'ELB', HealthCheckGracePeriod: 90 });
    expect(group(primary).Properties.LifecycleHookSpecificationList).toEqual([
      {
        LifecycleHookName: LAUNCH_HOOK_NAME,
        LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
        HeartbeatTimeout: 600,
        DefaultResult: 'ABANDON',
      },
    ]);
  });

  test('sizes: production min 3 (one per AZ), max 12; the standby keeps its smaller minimum; lean 1-2', () => {
    expect(group(primary).Properties).toMatchObject({ MinSize: '3', MaxSize: '12' });
    expect(group(standby).Properties).toMatchObject({ MinSize: '2', MaxSize: '12' });
    expect(group(leanPrimary).Properties).toMatchObject({ MinSize: '1', MaxSize: '2' });
  });

  test('launches before it terminates, rebalances capacity and follows zonal shift', () => {
    expect(group(primary).Properties).toMatchObject({
      InstanceMaintenancePolicy: { MinHealthyPercentage: 100, MaxHealthyPercentage: 110 },
      CapacityRebalance: true,
      AvailabilityZoneDistribution: { CapacityDistributionStrategy: 'balanced-best-effort' },
      AvailabilityZoneImpairmentPolicy: {
        ZonalShiftEnabled: true,
        ImpairedZoneHealthCheckBehavior: 'IgnoreUnhealthy',
      },
      DefaultInstanceWarmup: 60,
      MaxInstanceLifetime: 14 * 24 * 3600,
    });
  });

  test('replaces every instance through an instance refresh that keeps 100% healthy, pauses at checkpoints and stops on the fleet alarms', () => {
    const stack = production.primary;
    const refresh = group(primary).UpdatePolicy.AutoScalingInstanceRefresh;
    expect(refresh).toEqual({
      Strategy: 'Rolling',
      Preferences: {
        MinHealthyPercentage: 100,
        MaxHealthyPercentage: 110,
        InstanceWarmup: 60,
        SkipMatching: true,
        CheckpointPercentages: [33, 66, 100],
        CheckpointDelay: 360,
        BakeTime: 360,
        AlarmSpecification: { Alarms: stack.fleetAlarms.refreshAlarms.map((a) => ({ Ref: id(stack, a) })) },
      },
    });
    expect(stack.fleetAlarms.refreshAlarms.map((a) => a.node.id)).toEqual([
      'Alb5xxRate',
      'Target5xxRate',
      'P99Latency',
      'UnhealthyHosts',
      'CircuitBreakerOpen',
    ]);
    expect(group(primary).UpdatePolicy.AutoScalingRollingUpdate).toBeUndefined();
  });

  test('sends its launch and termination notifications, failures included, to the alarm topic', () => {
    const stack = production.primary;
    expect(group(primary).Properties.NotificationConfigurations).toEqual([
      {
        TopicARN: { Ref: id(stack, stack.alarmTopic.topic) },
        NotificationTypes: [
          'autoscaling:EC2_INSTANCE_LAUNCH',
          'autoscaling:EC2_INSTANCE_LAUNCH_ERROR',
          'autoscaling:EC2_INSTANCE_TERMINATE',
          'autoscaling:EC2_INSTANCE_TERMINATE_ERROR',
        ],
      },
    ]);
  });

  test("the topic's key lets Auto Scaling's service-linked role encrypt, named by condition (it may not exist yet)", () => {
    const stack = production.primary;
    const key = resources(primary)[id(stack, stack.alarmTopic.key)];
    const statement = (key.Properties.KeyPolicy.Statement as Json[]).find(
      (s) => s.Sid === 'AllowAutoScalingNotifications',
    );
    expect(statement).toEqual({
      Sid: 'AllowAutoScalingNotifications',
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Resource: '*',
      Condition: {
        ArnEquals: {
          'aws:PrincipalArn':
            'arn:aws:iam::111111111111:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling',
        },
        StringEquals: { 'kms:ViaService': 'sns.us-east-1.amazonaws.com' },
      },
    });
    // no topic-policy statement denies it (the TLS deny is conditional; the role's own policy allows sns:Publish)
    const topicPolicy = Object.values(primary.findResources('AWS::SNS::TopicPolicy'))[0];
    const denies = (topicPolicy.Properties.PolicyDocument.Statement as Json[]).filter(
      (s) => s.Effect === 'Deny',
    );
    expect(denies.every((s) => s.Condition !== undefined)).toBe(true);
  });

  test('scales on CPU (50%) and on requests per instance (6000 a minute)', () => {
    primary.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingConfiguration: {
        PredefinedMetricSpecification: { PredefinedMetricType: 'ASGAverageCPUUtilization' },
        TargetValue: 50,
      },
    });
    primary.hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingConfiguration: {
        PredefinedMetricSpecification: Match.objectLike({ PredefinedMetricType: 'ALBRequestCountPerTarget' }),
        TargetValue: 6000,
      },
    });
  });
});

describe('target group', () => {
  const tg = () =>
    Object.values(primary.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))[0].Properties;
  const attributes = () =>
    Object.fromEntries(
      (tg().TargetGroupAttributes as { Key: string; Value: string }[]).map((a) => [a.Key, a.Value]),
    );

  test('checks /health/ready every 10 s, 5 s timeout, 2 failures out and 2 passes in', () => {
    expect(tg()).toMatchObject({
      Port: 8080,
      Protocol: 'HTTP',
      TargetType: 'instance',
      HealthCheckPath: '/health/ready',
      HealthCheckProtocol: 'HTTP',
      HealthCheckIntervalSeconds: 10,
      HealthCheckTimeoutSeconds: 5,
      HealthyThresholdCount: 2,
      UnhealthyThresholdCount: 2,
      Matcher: { HttpCode: '200' },
    });
    expect(timings.DETECTION_TIME.toSeconds()).toBe(30);
  });

  test("drains for exactly the service's shutdown budget (SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS of its environment file)", () => {
    const env = environment(primary);
    const budget = (Number(env.get('SHUTDOWN_DELAY_MS')) + Number(env.get('DRAIN_TIMEOUT_MS'))) / 1000;
    expect(attributes()['deregistration_delay.timeout_seconds']).toBe(String(budget));
    // and readiness fails long enough before the listener closes for the ALB to notice
    expect(Number(env.get('SHUTDOWN_DELAY_MS')) / 1000).toBeGreaterThanOrEqual(
      timings.HEALTH_CHECK_INTERVAL.toSeconds() * timings.UNHEALTHY_THRESHOLD,
    );
  });

  test('routes with weighted random and anomaly mitigation (less traffic to a gray-failing instance)', () => {
    expect(attributes()).toMatchObject({
      'load_balancing.algorithm.type': 'weighted_random',
      'load_balancing.algorithm.anomaly_mitigation': 'on',
    });
    expect(attributes()['slow_start.duration_seconds']).toBeUndefined();
  });

  test('the timings hang together: the launch deadline sits inside the hook, the grace covers the first checks', () => {
    expect(timings.READY_DEADLINE.toSeconds()).toBeLessThan(timings.LAUNCH_TIMEOUT.toSeconds());
    expect(timings.HEALTH_CHECK_GRACE.toSeconds()).toBeGreaterThan(
      timings.HEALTH_CHECK_INTERVAL.toSeconds() * (timings.HEALTHY_THRESHOLD + 1),
    );
    expect(timings.SERVICE_STOP_TIMEOUT.toSeconds()).toBeGreaterThan(
      timings.DEREGISTRATION_DELAY.toSeconds(),
    );
    expect(timings.REFRESH_BAKE_TIME.toSeconds()).toBeGreaterThan(5 * 60);
  });
});

describe('instance role: least privilege', () => {
  const statements = (stack: RegionalStack, template: Template): Json[] => {
    const policy = resources(template)[id(stack, stack.fleet.instancePolicy)];
    return policy.Properties.PolicyDocument.Statement as Json[];
  };
  const bySid = (stack: RegionalStack, template: Template) =>
    Object.fromEntries(statements(stack, template).map((s) => [s.Sid ?? s.Action, s]));

  test('holds every permission in one customer managed policy (no inline policy), plus AmazonSSMManagedInstanceCore', () => {
    const stack = production.primary;
    const role = resources(primary)[id(stack, stack.fleet.role)];
    expect(role.Properties.Policies).toBeUndefined();
    expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain('AmazonSSMManagedInstanceCore');
    const inline = Object.values(primary.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(id(stack, stack.fleet.role)),
    );
    expect(inline).toEqual([]);
  });

  test('grants exactly: its bundle, outbox sends, its log group, namespaced metrics, its secrets, its own launch, checkout in the database', () => {
    const stack = production.primary;
    const s = bySid(stack, primary);
    expect(Object.keys(s).sort()).toEqual(
      [
        'CompleteOwnLaunch',
        'DecryptServiceSecrets',
        'EncryptOutboxMessages',
        'PutHostMetrics',
        'ReadServiceBundle',
        'ReadServiceSecrets',
        'SendOutboxMessages',
        'WriteServiceLogs',
        'rds-db:connect',
      ].sort(),
    );
    expect(s.ReadServiceBundle.Action).toBe('s3:GetObject');
    expect(s.ReadServiceBundle.Resource).toMatch(
      /^arn:aws:s3:::cdk-[a-z0-9]+-assets-111111111111-us-east-1\/[0-9a-f]{64}\.zip$/,
    );
    expect(s.SendOutboxMessages.Action).toBe('sqs:SendMessage');
    expect(s.SendOutboxMessages.Resource).toEqual([
      { 'Fn::GetAtt': [id(stack, stack.queues.orderEvents as sqs.Queue), 'Arn'] },
      { 'Fn::GetAtt': [id(stack, stack.queues.paymentRetry as sqs.Queue), 'Arn'] },
    ]);
    expect(s.PutHostMetrics).toMatchObject({
      Action: 'cloudwatch:PutMetricData',
      Resource: '*',
      Condition: { StringEquals: { 'cloudwatch:namespace': FLEET_HOST_METRICS_NAMESPACE } },
    });
    expect(s.WriteServiceLogs.Resource).toEqual({ 'Fn::GetAtt': [id(stack, stack.fleet.logGroup), 'Arn'] });
    expect(s.CompleteOwnLaunch).toMatchObject({
      Action: 'autoscaling:CompleteLifecycleAction',
      Resource:
        'arn:aws:autoscaling:us-east-1:111111111111:autoScalingGroup:*:autoScalingGroupName/ResilientShop-Primary-checkout',
    });
    // the imported secret's ARN ends in a random suffix: the policy must match any
    expect(s.ReadServiceSecrets.Resource).toContain(
      'arn:aws:secretsmanager:us-east-1:111111111111:secret:resilient-shop/payment-gateway-api-key-??????',
    );
    for (const sid of ['DecryptServiceSecrets', 'EncryptOutboxMessages']) {
      expect(Object.keys(s[sid].Condition.StringEquals)).toEqual(['kms:ViaService']);
    }
    // no wildcard action anywhere
    for (const st of statements(stack, primary)) {
      for (const action of [st.Action].flat()) expect(action).not.toMatch(/\*/);
    }
  });

  test('connects to the database as checkout only: through the proxy in the primary, to the cluster in the standby', () => {
    const connect = (stack: RegionalStack, template: Template) =>
      JSON.stringify(bySid(stack, template)['rds-db:connect'].Resource);
    expect(connect(production.primary, primary)).toMatch(/dbuser:.*prx-.*\/checkout|DBProxyArn.*\/checkout/s);
    expect(connect(production.standby!, standby)).toMatch(/DBClusterResourceId.*\/checkout/);
    for (const [stack, template] of templates) expect(connect(stack, template)).not.toContain('shop_admin');
  });
});

describe('environment and secrets', () => {
  test('the primary connects through RDS Proxy on 5432 with IAM as checkout', () => {
    const stack = production.primary;
    const env = environment(primary);
    expect(env.get('DB_IAM_AUTH')).toBe('true');
    expect(env.get('DB_HOST')).toBe(`CFN_ATT_${id(stack, stack.database.proxy!)}_Endpoint`);
    expect(env.get('DB_PORT')).toBe('5432');
    expect(env.get('DB_USER')).toBe('checkout');
    expect(env.has('NODE_EXTRA_CA_CERTS')).toBe(false);
  });

  test('the standby (no proxy) connects to its cluster instance on 5433, trusting the RDS CA it downloads', () => {
    const stack = production.standby!;
    const env = environment(standby);
    // its instance: the secondary's writer endpoint is inactive until the cluster is promoted
    const instances = Object.keys(standby.findResources('AWS::RDS::DBInstance'));
    expect(instances).toHaveLength(1);
    expect(env.get('DB_HOST')).toBe(`CFN_ATT_${instances[0]}_Endpoint_Address`);
    expect(stack.database.cluster.instanceEndpoints).toHaveLength(1);
    expect(env.get('DB_PORT')).toBe('5433');
    expect(env.get('NODE_EXTRA_CA_CERTS')).toBe(FLEET_PATHS.rdsCaBundle);
    expect(userDataOf(standby)).toContain(
      `-o '${FLEET_PATHS.rdsCaBundle}' 'https://truststore.pki.rds.amazonaws.com/`,
    );
  });

  test('the queue URLs, drain timings and region are in the environment file; PORT is the app port', () => {
    const stack = production.primary;
    const env = environment(primary);
    expect(env.get('ORDER_EVENTS_QUEUE_URL')).toBe(
      `CFN_REF_${id(stack, stack.queues.orderEvents as sqs.Queue)}`,
    );
    expect(env.get('PAYMENT_RETRY_QUEUE_URL')).toBe(
      `CFN_REF_${id(stack, stack.queues.paymentRetry as sqs.Queue)}`,
    );
    expect(env.get('AWS_REGION')).toBe('us-east-1');
    expect(env.get('PORT')).toBe('8080');
    expect(env.get('SHUTDOWN_DELAY_MS')).toBe('20000');
    expect(env.get('DRAIN_TIMEOUT_MS')).toBe('25000');
  });

  test('no secret value is in the template or the user data: secrets are named by ARN and fetched at start', () => {
    for (const [stack, template] of templates) {
      const json = JSON.stringify(template.toJSON());
      const userData = userDataOf(template);
      const env = environment(template);
      expect(env.has('ADMIN_TOKEN')).toBe(false);
      expect(env.has('PAYMENT_API_KEY')).toBe(false);
      expect(userData).not.toMatch(/ADMIN_TOKEN=|PAYMENT_API_KEY=/);
      // the generated admin secret has no value in the template
      const admin = resources(template)[id(stack, stack.fleet.adminTokenSecret as never)];
      expect(admin.Properties.SecretString).toBeUndefined();
      expect(admin.Properties.GenerateSecretString).toMatchObject({
        PasswordLength: 48,
        ExcludePunctuation: true,
      });
      expect(json).not.toMatch(/"SecretString"/);
      // the secrets script names them by ARN and writes a root-only file
      const fetch = fileWrittenBy(userData, FLEET_PATHS.secretsScript)!;
      expect(fetch).toMatch(/^put ADMIN_TOKEN 'CFN_REF_/m);
      expect(fetch).toContain('umask 077');
    }
    // the gateway key is not fetched at start: the service reads it (and follows rotations)
    // itself from the secret the environment names
    expect(fileWrittenBy(userDataOf(primary), FLEET_PATHS.secretsScript)).not.toMatch(/PAYMENT_API_KEY/);
    expect(environment(primary).get('PAYMENT_API_KEY_SECRET_ID')).toBe(
      'resilient-shop/payment-gateway-api-key',
    );
  });

  test('the unit runs the bundle with SERVICE_NODE_FLAGS as an unprivileged user, secrets fetched by root before each start', () => {
    const unit = fileWrittenBy(userDataOf(primary), FLEET_PATHS.serviceUnit)!;
    expect(unitValues(unit, 'ExecStart')).toEqual([
      '/usr/bin/node-22 --max-old-space-size=128 --enable-source-maps /opt/checkout/app/service.js',
    ]);
    expect(unitValues(unit, 'ExecStartPre')).toEqual([`+${FLEET_PATHS.secretsScript}`]);
    expect(unitValues(unit, 'User')).toEqual(['checkout']);
    expect(unitValues(unit, 'EnvironmentFile')).toEqual([
      FLEET_PATHS.environmentFile,
      `-${FLEET_PATHS.secretsFile}`,
    ]);
    expect(unitValues(unit, 'Restart')).toEqual(['on-failure']);
    expect(unitValues(unit, 'RestartPreventExitStatus')).toEqual(['78']);
    expect(unitValues(unit, 'KillSignal')).toEqual(['SIGTERM']);
    // the primary forwards SIGTERM to its workers; systemd must not signal them too
    expect(unitValues(unit, 'KillMode')).toEqual(['mixed']);
    expect(unitValues(unit, 'TimeoutStopSec')).toEqual([String(timings.SERVICE_STOP_TIMEOUT.toSeconds())]);
  });

  test('the user data installs Node.js 22 and the CloudWatch agent from the distribution and completes the launch hook', () => {
    const userData = userDataOf(primary);
    expect(userData).toMatch(/^retry dnf install -y .*\bnodejs22\b.*\bamazon-cloudwatch-agent\b/m);
    expect(userData).toMatch(/^retry aws s3 cp .*"\$BUNDLE_URI"/m);
    expect(userData).toContain(`readonly HOOK_NAME='${LAUNCH_HOOK_NAME}'`);
    expect(userData).toContain("readonly ASG_NAME='ResilientShop-Primary-checkout'");
    expect(userData).toMatch(/^complete_launch CONTINUE$/m);
    expect(userData).toContain("trap 'abandon $LINENO' ERR");
    expect(Buffer.byteLength(userData)).toBeLessThan(14 * 1024); // EC2's limit is 16 KB
  });
});

describe('sandbox', () => {
  test('lean runs the fakes as units of their own, marked not for production, and points the service at them', () => {
    const userData = userDataOf(leanPrimary);
    for (const unit of [FLEET_UNITS.fakePayment, FLEET_UNITS.fakeRecommendations]) {
      const text = fileWrittenBy(userData, `/etc/systemd/system/${unit}`)!;
      expect(text).toMatch(/^Description=SANDBOX ONLY, NOT FOR PRODUCTION/m);
      expect(text).toContain('/opt/checkout/app/fakes.js');
    }
    expect(userData).toMatch(
      new RegExp(
        `^systemctl enable --now ${FLEET_UNITS.fakePayment} ${FLEET_UNITS.fakeRecommendations}$`,
        'm',
      ),
    );
    const env = environment(leanPrimary);
    expect(env.get('PAYMENT_URL')).toBe('http://127.0.0.1:4001');
    expect(env.get('RECOMMENDATIONS_URL')).toBe('http://127.0.0.1:4002');
  });

  test('production runs no fake and calls the configured gateway', () => {
    const userData = userDataOf(primary);
    expect(userData).not.toContain('fakes.js');
    expect(environment(primary).get('PAYMENT_URL')).toBe('https://api.payments.example.com');
  });

  test('config refuses the sandbox in production', () => {
    expect(() =>
      configWith({ service: { ...(rawConfig().service as Json), sandbox: true } as never }),
    ).toThrow(/service\.sandbox: must be false in production/);
  });
});

describe('logs and metrics', () => {
  test("the agent ships the service's log file to the fleet's KMS-encrypted log group", () => {
    const stack = production.primary;
    const agent = JSON.parse(fileWrittenBy(userDataOf(primary), FLEET_PATHS.agentConfig)!);
    expect(agent.logs.logs_collected.files.collect_list[0]).toEqual({
      file_path: FLEET_PATHS.serviceLog,
      log_group_name: `CFN_REF_${id(stack, stack.fleet.logGroup)}`,
      log_stream_name: '{instance_id}/service',
      timezone: 'UTC',
    });
    expect(agent.metrics.namespace).toBe(FLEET_HOST_METRICS_NAMESPACE);
    const group = resources(primary)[id(stack, stack.fleet.logGroup)].Properties;
    expect(group.KmsKeyId).toEqual({ 'Fn::GetAtt': [id(stack, stack.fleet.key), 'Arn'] });
    expect(group.RetentionInDays).toBe(365);
  });

  test('the breaker and shedding metrics the alarms read are ones the service emits', () => {
    expect(COUNTERS).toContain('RequestsShed');
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'ResilientShop/Checkout',
      MetricName: 'RequestsShed',
      Dimensions: [{ Name: 'Service', Value: 'checkout' }],
    });
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'ResilientShop/Checkout',
      MetricName: 'CircuitBreakerOpen',
      Statistic: 'Maximum',
      Dimensions: [{ Name: 'Service', Value: 'checkout' }],
    });
  });
});

describe('wiring the packs do not read', () => {
  test('the S3 gateway endpoint serves the app subnets, so the bundle download stays in the VPC', () => {
    const stack = production.primary;
    const endpoint = Object.values(primary.findResources('AWS::EC2::VPCEndpoint')).find((e) =>
      JSON.stringify(e.Properties.ServiceName).includes('.s3'),
    )!;
    const appTables = stack.network.vpc
      .selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS })
      .subnets.map((s) => stack.resolve(s.routeTable.routeTableId));
    expect(endpoint.Properties.RouteTableIds).toEqual(expect.arrayContaining(appTables));
  });

  test('the app group may leave on 443 (S3 through the gateway endpoint, AWS APIs, the gateway)', () => {
    const stack = production.primary;
    const app = resources(primary)[id(stack, stack.securityGroups.app)];
    expect(app.Properties.SecurityGroupEgress).toContainEqual(
      expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
    );
  });
});

describe("construct ids (the resources' identity in a deployed account)", () => {
  test('the parts built in lib/fleet/ keep the ids they had inside Fleet: a rename would replace the resource', () => {
    // GIVEN the production fleet WHEN its direct children are listed
    const ids = production.primary.fleet.node.children.map((c) => c.node.id);
    // THEN each part sits directly under the Fleet with its original id
    expect(ids).toEqual(
      expect.arrayContaining([
        'Key',
        'ServiceLogs',
        'AdminToken',
        'Bundle',
        'InstanceRole',
        'InstancePolicy',
        'LaunchTemplate',
        'AutoScalingGroup',
        'TargetGroup',
      ]),
    );
    // AND the template's logical ids are the ones deployed accounts hold (from before the
    // parts moved to lib/fleet/)
    const fleetIds = Object.keys(resources(primary));
    expect(fleetIds).toEqual(
      expect.arrayContaining([
        'FleetKey3D2DECCD',
        'FleetServiceLogs94588A2C',
        'FleetAdminTokenADCBD3FC',
        'FleetInstanceRoleA605DB82',
        'FleetInstancePolicyDA3B9359',
        'FleetLaunchTemplateProfileB169EB6D',
        'FleetLaunchTemplate3FC2FEAE',
        'FleetAutoScalingGroupASGDF45BDA5',
        'FleetAutoScalingGroupScalingPolicyCpuTracking528494BD',
        'FleetAutoScalingGroupScalingPolicyRequestCountTracking58FDFA81',
        'FleetTargetGroupE530A1E5',
      ]),
    );
  });
});

describe('Fleet validation', () => {
  const fixture = (): { stack: Stack; props: FleetProps } => {
    const stack = new Stack(new App(), 'Fixture', { env: { account: '111111111111', region: 'us-east-1' } });
    const vpc = new ec2.Vpc(stack, 'Vpc', { availabilityZones: ['us-east-1a', 'us-east-1b'] });
    const alb = new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc });
    const listener = alb.addListener('L', { port: 80, open: false });
    return {
      stack,
      props: {
        vpc,
        securityGroup: new ec2.SecurityGroup(stack, 'Sg', { vpc }),
        listener,
        database: {
          endpoint: 'db.example',
          connectionPort: 5432,
          applicationUser: 'checkout',
          grantConnect: (grantee: iam.IGrantable) =>
            iam.Grant.addToPrincipal({ grantee, actions: ['rds-db:connect'], resourceArns: ['*'] }),
        },
        queues: { orderEvents: new sqs.Queue(stack, 'A'), paymentRetry: new sqs.Queue(stack, 'B') },
        sandbox: true,
      },
    };
  };

  test('needs a gateway and a recommendation engine unless it runs the sandbox', () => {
    const { stack, props } = fixture();
    expect(() => new Fleet(stack, 'F', { ...props, sandbox: false })).toThrow(
      /needs paymentGateway and recommendationsUrl unless sandbox is true/,
    );
  });

  test('refuses an x86 instance type (the image is arm64)', () => {
    const { stack, props } = fixture();
    expect(
      () => new Fleet(stack, 'F', { ...props, instanceType: new ec2.InstanceType('m7i.large') }),
    ).toThrow(/m7i\.large is not Graviton \(arm64\)/);
  });

  test('refuses a minimum above the maximum', () => {
    const { stack, props } = fixture();
    expect(() => new Fleet(stack, 'F', { ...props, minCapacity: 4, maxCapacity: 2 })).toThrow(
      /1 <= minCapacity <= maxCapacity, got 4 and 2/,
    );
  });

  test('watches at most 10 alarms during a refresh', () => {
    const { stack, props } = fixture();
    const fleet = new Fleet(stack, 'F', props);
    const alarms = Array.from({ length: 11 }, (_, i) =>
      fleet.metricRequestsShed().createAlarm(stack, `A${i}`, { threshold: 1, evaluationPeriods: 1 }),
    );
    expect(() => fleet.addRefreshAlarms(...alarms)).toThrow(/at most 10 alarms, got 11/);
  });
});

describe('the wiring pack reads the fleet', () => {
  /** A network with interface endpoints and the fleet in the app group; `admit` opens the endpoints to it. */
  const build = (admit: boolean) =>
    wiringFindings((stack) => {
      const network = new Network(stack, 'Network', { availabilityZones: ['us-east-1a', 'us-east-1b'] });
      const groups = new SecurityGroups(stack, 'Groups', {
        vpc: network.vpc,
        allowedIngressCidrs: ['0.0.0.0/0'],
      });
      if (admit) network.allowEndpointAccessFrom(groups.app, 'HTTPS from the fleet');
      const alb = new elbv2.ApplicationLoadBalancer(stack, 'Alb', {
        vpc: network.vpc,
        internetFacing: true,
        securityGroup: groups.loadBalancer,
      });
      new Fleet(stack, 'Fleet', {
        vpc: network.vpc,
        securityGroup: groups.app,
        listener: alb.addListener('Http', { port: 80, open: false }),
        database: {
          endpoint: 'db.example',
          connectionPort: 5432,
          applicationUser: 'checkout',
          grantConnect: (grantee: iam.IGrantable) =>
            iam.Grant.addToPrincipal({ grantee, actions: ['rds-db:connect'], resourceArns: ['*'] }),
        },
        queues: { orderEvents: new sqs.Queue(stack, 'A'), paymentRetry: new sqs.Queue(stack, 'B') },
        sandbox: true,
        minCapacity: 2,
      });
    }).filter((f) => f.includes('EndpointReach'));

  test('an instance whose group the endpoints do not admit is reported, once per service its role calls', () => {
    const findings = build(false);
    expect(findings.every((f) => f.endsWith(' at Fixture/Fleet/LaunchTemplate/Resource'))).toBe(true);
    const services = findings.map((f) => /EndpointReach\[([a-z0-9]+):/.exec(f)![1]).sort();
    // KMS is only used through SQS and Secrets Manager (kms:ViaService): no call of its own
    expect(services).toEqual(
      ['cloudwatch', 'ec2messages', 'logs', 'secretsmanager', 'sqs', 'ssm', 'ssmmessages'].sort(),
    );
  });

  test('admitted, the fleet reaches every endpoint it needs', () => {
    expect(build(true)).toEqual([]);
  });
});
