import { CfnResource, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { SecurityGroupGraph, cidrContains } from '../../lib/nag/network';
import { TemplateModel } from '../../lib/nag/template-model';
import { logicalId } from './fixtures';

describe('cidrContains', () => {
  test.each([
    ['0.0.0.0/0', '10.0.0.0/16', true],
    ['10.0.0.0/8', '10.0.0.0/16', true],
    ['10.0.0.0/16', '10.0.0.0/16', true],
    ['10.0.1.0/24', '10.0.0.0/16', false],
    ['10.1.0.0/16', '10.0.0.0/16', false],
    ['not-a-cidr', '10.0.0.0/16', false],
  ])('%s contains %s: %s', (outer, inner, contained) => {
    expect(cidrContains(outer, inner)).toBe(contained);
  });
});

describe('SecurityGroupGraph', () => {
  const stack = new Stack(undefined, 'Graph');
  const vpc = new ec2.CfnVPC(stack, 'Vpc', { cidrBlock: '10.0.0.0/16' });
  const group = (id: string, egress?: ec2.CfnSecurityGroup.EgressProperty[]) =>
    new ec2.CfnSecurityGroup(stack, id, {
      groupDescription: id,
      vpcId: vpc.ref,
      securityGroupEgress: egress,
    });
  const open = group('Open');
  const standaloneOnly = group('StandaloneOnly');
  new ec2.CfnSecurityGroupEgress(stack, 'ToDatabase', {
    groupId: standaloneOnly.attrGroupId,
    ipProtocol: 'tcp',
    fromPort: 5432,
    toPort: 5432,
    cidrIp: '10.0.0.0/16',
  });
  const placeholder = group('Closed', [
    { ipProtocol: 'icmp', fromPort: 252, toPort: 86, cidrIp: '255.255.255.255/32' },
  ]);
  const endpoint = group('Endpoint');
  new ec2.CfnSecurityGroupIngress(stack, 'FromPrivateRange', {
    groupId: endpoint.attrGroupId,
    ipProtocol: 'tcp',
    fromPort: 443,
    toPort: 443,
    cidrIp: '10.0.0.0/8',
  });
  const graph = SecurityGroupGraph.of(TemplateModel.of(vpc as CfnResource));
  const vpcKey = logicalId(vpc);

  test('a group without egress rules keeps the allow-all rule EC2 adds', () => {
    expect(graph.egressReaches(logicalId(open), [logicalId(endpoint)], vpcKey, [], 443)).toBe(true);
  });

  test('a group with only standalone egress rules has exactly those', () => {
    expect(graph.egressReaches(logicalId(standaloneOnly), [logicalId(endpoint)], vpcKey, [], 443)).toBe(
      false,
    );
    expect(graph.egressReaches(logicalId(standaloneOnly), [], vpcKey, [], 5432)).toBe(true);
  });

  test("CDK's disallow-all placeholder lets nothing out", () => {
    expect(graph.egressReaches(logicalId(placeholder), [logicalId(endpoint)], vpcKey, [], 443)).toBe(false);
  });

  test('an ingress CIDR that covers the VPC CIDR admits every group of the VPC', () => {
    expect(graph.admits(logicalId(endpoint), logicalId(open), vpcKey, 443)).toBe(true);
    expect(graph.admits(logicalId(endpoint), logicalId(open), vpcKey, 444)).toBe(false);
  });
});
