import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { endpointServicePrefix } from '../../../lib/nag/rules/endpoint-reach';
import { WIRING_RULES } from '../../../lib/nag/wiring-checks';
import { isolatedVpc, logicalId, resourcePath, wiringFindings } from '../fixtures';

const RULE = WIRING_RULES.endpointReach;

/** An interface endpoint with its own group and no ingress rule (CDK's `open: false`). */
function closedEndpoint(vpc: ec2.Vpc, id: string, service: ec2.InterfaceVpcEndpointAwsService) {
  return vpc.addInterfaceEndpoint(id, { service, open: false });
}

/** A function in the VPC that sends to a queue. */
function queueSender(stack: Stack, vpc: ec2.Vpc, allowAllOutbound = true): lambda.Function {
  const fn = new lambda.Function(stack, 'Worker', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    allowAllOutbound,
  });
  new sqs.Queue(stack, 'Queue', { enforceSSL: true }).grantSendMessages(fn);
  return fn;
}

describe('EndpointReach: VPC callers reach the interface endpoints of the services they call', () => {
  test('a function whose group the SQS endpoint does not admit is reported, naming sqs and the endpoint', () => {
    // GIVEN a function allowed sqs:SendMessage and an SQS endpoint (private DNS) admitting nobody
    let fn!: lambda.Function;
    let endpoint!: ec2.InterfaceVpcEndpoint;
    const findings = wiringFindings((stack) => {
      const vpc = isolatedVpc(stack);
      endpoint = closedEndpoint(vpc, 'Sqs', ec2.InterfaceVpcEndpointAwsService.SQS);
      fn = queueSender(stack, vpc);
    });
    // THEN the function is reported for sqs at that endpoint
    expect(findings).toEqual([`${RULE}[sqs:${logicalId(endpoint)}] at ${resourcePath(fn)}`]);
  });

  test('a function the endpoint admits on 443, with egress to it, passes', () => {
    const findings = wiringFindings((stack) => {
      const vpc = isolatedVpc(stack);
      const endpoint = closedEndpoint(vpc, 'Sqs', ec2.InterfaceVpcEndpointAwsService.SQS);
      // Opens 443 on the endpoint's group from the function's, and from the function's to it.
      endpoint.connections.allowDefaultPortFrom(queueSender(stack, vpc, false));
    });
    expect(findings).toEqual([]);
  });

  test('an endpoint open to the VPC CIDR does not help a function whose group lets nothing out', () => {
    // GIVEN CDK's default endpoint (ingress 443 from the VPC CIDR) and allowAllOutbound: false
    let fn!: lambda.Function;
    let endpoint!: ec2.InterfaceVpcEndpoint;
    const findings = wiringFindings((stack) => {
      const vpc = isolatedVpc(stack);
      endpoint = vpc.addInterfaceEndpoint('Sqs', { service: ec2.InterfaceVpcEndpointAwsService.SQS });
      fn = queueSender(stack, vpc, false);
    });
    // THEN CDK's "disallow all" placeholder egress counts as no egress
    expect(findings).toEqual([`${RULE}[sqs:${logicalId(endpoint)}] at ${resourcePath(fn)}`]);
  });

  test('the same function with allow-all egress reaches an endpoint open to the VPC CIDR', () => {
    const findings = wiringFindings((stack) => {
      const vpc = isolatedVpc(stack);
      vpc.addInterfaceEndpoint('Sqs', { service: ec2.InterfaceVpcEndpointAwsService.SQS });
      queueSender(stack, vpc, true);
    });
    expect(findings).toEqual([]);
  });

  test("a function need not reach the Logs endpoint: Lambda ships its logs, and endpoints for unused services don't count", () => {
    const findings = wiringFindings((stack) => {
      const vpc = isolatedVpc(stack);
      closedEndpoint(vpc, 'Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS);
      closedEndpoint(vpc, 'Kms', ec2.InterfaceVpcEndpointAwsService.KMS);
      const fn = new lambda.Function(stack, 'Worker', {
        runtime: lambda.Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => {};'),
        vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      });
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['logs:PutLogEvents'], resources: ['*'] }));
    });
    expect(findings).toEqual([]);
  });

  describe('Secrets Manager rotation applications', () => {
    function rotation(stack: Stack, admit: boolean): { app: string; endpoint: ec2.InterfaceVpcEndpoint } {
      const vpc = isolatedVpc(stack);
      const endpoint = closedEndpoint(
        vpc,
        'SecretsManager',
        ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      );
      const rotationGroup = new ec2.SecurityGroup(stack, 'RotationGroup', { vpc, allowAllOutbound: true });
      const databaseGroup = new ec2.SecurityGroup(stack, 'DatabaseGroup', { vpc });
      const rotation = new secretsmanager.SecretRotation(stack, 'Rotation', {
        application: secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
        secret: new secretsmanager.Secret(stack, 'Secret'),
        target: {
          connections: new ec2.Connections({
            securityGroups: [databaseGroup],
            defaultPort: ec2.Port.tcp(5432),
          }),
        },
        vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        securityGroup: rotationGroup,
      });
      if (admit) endpoint.connections.allowDefaultPortFrom(rotationGroup);
      return { app: rotation.node.findChild('Resource').node.path, endpoint };
    }

    test('a rotation application the Secrets Manager endpoint does not admit is reported', () => {
      let found!: { app: string; endpoint: ec2.InterfaceVpcEndpoint };
      const findings = wiringFindings((stack) => {
        found = rotation(stack, false);
      });
      expect(findings).toEqual([`${RULE}[secretsmanager:${logicalId(found.endpoint)}] at ${found.app}`]);
    });

    test('a rotation application the endpoint admits passes', () => {
      expect(wiringFindings((stack) => rotation(stack, true))).toEqual([]);
    });
  });

  test('an EC2 launch template is read through its instance profile role', () => {
    // GIVEN instances whose role reads a queue, and an SQS endpoint admitting nobody
    let template!: ec2.LaunchTemplate;
    let endpoint!: ec2.InterfaceVpcEndpoint;
    const findings = wiringFindings((stack) => {
      const vpc = isolatedVpc(stack);
      endpoint = closedEndpoint(vpc, 'Sqs', ec2.InterfaceVpcEndpointAwsService.SQS);
      const role = new iam.Role(stack, 'InstanceRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      });
      new sqs.Queue(stack, 'Queue', { enforceSSL: true }).grantConsumeMessages(role);
      template = new ec2.LaunchTemplate(stack, 'Template', {
        machineImage: ec2.MachineImage.genericLinux({ 'us-east-1': 'ami-12345678' }),
        instanceType: new ec2.InstanceType('t3.micro'),
        securityGroup: new ec2.SecurityGroup(stack, 'InstanceGroup', { vpc }),
        role,
      });
    });
    expect(findings).toEqual([`${RULE}[sqs:${logicalId(endpoint)}] at ${resourcePath(template)}`]);
  });

  test.each([
    ['com.amazonaws.us-east-1.monitoring', 'cloudwatch'],
    ['com.amazonaws.us-east-1.secretsmanager', 'secretsmanager'],
    ['com.amazonaws.us-east-1.ecr.dkr', 'ecr'],
    ['com.amazonaws.us-east-1.ssmmessages', 'ssmmessages'],
    [{ 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.sqs']] }, 'sqs'],
  ])('endpoint service %j is called with IAM prefix %s', (serviceName, prefix) => {
    expect(endpointServicePrefix(serviceName)).toBe(prefix);
  });
});
