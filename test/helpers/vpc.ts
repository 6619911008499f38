import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

/** A two-AZ VPC with the three subnet tiers the constructs expect (public, app, data). */
export function threeTierVpc(stack: Stack, azs: string[] = ['us-east-1a', 'us-east-1b']): ec2.Vpc {
  return new ec2.Vpc(stack, 'Vpc', {
    availabilityZones: azs,
    subnetConfiguration: [
      { name: 'Public', subnetType: ec2.SubnetType.PUBLIC },
      { name: 'App', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      { name: 'Data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    ],
  });
}
