import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { INTERFACE_ENDPOINT_SERVICES, Network, NetworkProps } from '../../lib/constructs/network';
import { buildTestApp, shippedConfig } from '../helpers/app';

const AZS = ['us-east-1a', 'us-east-1b', 'us-east-1c'];

function networkTemplate(props: Partial<NetworkProps> = {}): Template {
  const stack = new Stack(new App(), 'Test', { env: { account: '111111111111', region: 'us-east-1' } });
  new Network(stack, 'Network', { availabilityZones: AZS, cidr: '10.10.0.0/16', ...props });
  return Template.fromStack(stack);
}

describe('Network', () => {
  const template = networkTemplate();

  test('spans the given AZs with public, app and data subnets in each', () => {
    const subnets = Object.values(template.findResources('AWS::EC2::Subnet'));
    expect(subnets).toHaveLength(9);
    const azs = subnets.map((s) => (s.Properties as { AvailabilityZone: string }).AvailabilityZone);
    for (const az of AZS) expect(azs.filter((a) => a === az)).toHaveLength(3);
  });

  test('creates a NAT gateway per AZ by default, so losing one AZ keeps egress in the others', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 3);
  });

  test('public subnets do not hand out public IPs', () => {
    const subnets = Object.values(template.findResources('AWS::EC2::Subnet'));
    for (const subnet of subnets) {
      expect((subnet.Properties as { MapPublicIpOnLaunch?: boolean }).MapPublicIpOnLaunch).toBe(false);
    }
  });

  test('isolated data subnets have no route out of the VPC', () => {
    const routes = template.findResources('AWS::EC2::Route');
    const dataTables = Object.keys(template.findResources('AWS::EC2::RouteTable')).filter((id) =>
      id.includes('DataSubnet'),
    );
    expect(dataTables).toHaveLength(3);
    for (const route of Object.values(routes)) {
      const table = (route.Properties as { RouteTableId: { Ref: string } }).RouteTableId.Ref;
      expect(dataTables).not.toContain(table);
    }
  });

  test('has gateway endpoints for S3 and DynamoDB', () => {
    for (const service of ['s3', 'dynamodb']) {
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Gateway',
        ServiceName: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([`.${service}`])]) }),
      });
    }
  });

  test('has a private-DNS interface endpoint for every AWS API the workload calls', () => {
    const endpoints = Object.values(
      template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } }),
    );
    expect(endpoints).toHaveLength(Object.keys(INTERFACE_ENDPOINT_SERVICES).length);
    for (const endpoint of endpoints) expect(endpoint.Properties.PrivateDnsEnabled).toBe(true);
    const services = JSON.stringify(endpoints.map((e) => e.Properties.ServiceName));
    for (const name of [
      'sqs',
      'secretsmanager',
      'monitoring',
      'logs',
      'ssm',
      'ssmmessages',
      'ec2messages',
      'kms',
      'sts',
    ]) {
      expect(services).toContain(`.${name}"`);
    }
  });

  test('interface endpoints admit nobody until a group is allowed', () => {
    const sg = Object.values(template.findResources('AWS::EC2::SecurityGroup')).find((r) =>
      String(r.Properties.GroupDescription).startsWith('Interface endpoints'),
    );
    expect(sg?.Properties.SecurityGroupIngress).toBeUndefined();
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  test('logs all traffic to a KMS-encrypted log group kept for a year', () => {
    template.hasResourceProperties('AWS::EC2::FlowLog', {
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
      MaxAggregationInterval: 60,
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: 365,
      KmsKeyId: Match.objectLike({ 'Fn::GetAtt': Match.arrayWith(['Arn']) }),
    });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('the flow log role has a managed policy scoped to its log group and no inline policy', () => {
    template.resourceCountIs('AWS::IAM::Policy', 0);
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('FlowLogGroup'), 'Arn'] },
          }),
        ],
      },
    });
  });

  test('strips every rule from the default security group', () => {
    template.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });

  test('retains flow logs and their key when the stack is deleted', () => {
    template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain' });
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
  });

  test('with one NAT gateway and no interface endpoints (lean)', () => {
    const lean = networkTemplate({
      natGateways: 1,
      interfaceEndpoints: false,
      availabilityZones: AZS.slice(0, 2),
    });
    lean.resourceCountIs('AWS::EC2::NatGateway', 1);
    lean.resourceCountIs('AWS::EC2::VPCEndpoint', 2); // the free gateway endpoints stay
    lean.resourceCountIs('AWS::EC2::Subnet', 6);
  });

  test.each<[string, Partial<NetworkProps>, RegExp]>([
    ['one AZ', { availabilityZones: ['us-east-1a'] }, /needs at least 2 availabilityZones \(got 1\)/],
    [
      'a repeated AZ',
      { availabilityZones: ['us-east-1a', 'us-east-1a'] },
      /availabilityZones must be distinct/,
    ],
    [
      'no NAT gateway',
      { natGateways: 0 },
      /natGateways must be between 1 and the number of AZs \(3\), got 0/,
    ],
    [
      'more NAT gateways than AZs',
      { natGateways: 4 },
      /natGateways must be between 1 and the number of AZs \(3\), got 4/,
    ],
  ])('rejects %s', (_name, props, message) => {
    expect(() => networkTemplate(props)).toThrow(message);
  });
});

describe('Network in the RegionalStack', () => {
  test('production: three AZs, NAT per AZ, interface endpoints; lean: two AZs, one NAT, none', () => {
    const prod = Template.fromStack(buildTestApp(shippedConfig('default')).stacks.primary);
    prod.resourceCountIs('AWS::EC2::NatGateway', 3);
    prod.resourceCountIs('AWS::EC2::VPCEndpoint', 2 + Object.keys(INTERFACE_ENDPOINT_SERVICES).length);

    const lean = Template.fromStack(buildTestApp(shippedConfig('lean')).stacks.primary);
    lean.resourceCountIs('AWS::EC2::NatGateway', 1);
    lean.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
    lean.resourceCountIs('AWS::EC2::Subnet', 6);
  });
});
