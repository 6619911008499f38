import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { WIRING_RULES } from '../../../lib/nag/wiring-checks';
import { logicalId, resourcePath, wiringFindings } from '../fixtures';

const RULE = WIRING_RULES.keyPolicyPrincipal;

describe('KeyPolicyPrincipal: no key policy names a principal the same template creates', () => {
  test('a key policy statement whose principal is a role of the template is reported on the key', () => {
    // GIVEN a key policy that names a role created next to it
    let key!: kms.Key;
    let role!: iam.Role;
    const findings = wiringFindings((stack) => {
      key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      role = new iam.Role(stack, 'Reader', { assumedBy: new iam.ServicePrincipal('rds.amazonaws.com') });
      key.addToResourcePolicy(
        new iam.PolicyStatement({ principals: [role], actions: ['kms:Decrypt'], resources: ['*'] }),
      );
    });
    // THEN the key is reported, naming the role
    expect(findings).toEqual([`${RULE}[${logicalId(role)}] at ${resourcePath(key)}`]);
  });

  test('a user named through an ARN built with Fn::Join is caught too', () => {
    let user!: iam.User;
    const findings = wiringFindings((stack) => {
      const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      user = new iam.User(stack, 'Operator');
      key.addToResourcePolicy(
        new iam.PolicyStatement({
          principals: [
            new iam.ArnPrincipal(
              stack.formatArn({ service: 'iam', region: '', resource: 'user', resourceName: user.userName }),
            ),
          ],
          actions: ['kms:Decrypt'],
          resources: ['*'],
        }),
      );
    });
    expect(findings).toEqual([expect.stringContaining(`${RULE}[${logicalId(user)}] at `)]);
  });

  test("a grant to a role of the same account lands in the role's policy, and the key passes", () => {
    const findings = wiringFindings((stack) => {
      const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
      key.grantDecrypt(
        new iam.Role(stack, 'Reader', { assumedBy: new iam.ServicePrincipal('rds.amazonaws.com') }),
      );
    });
    expect(findings).toEqual([]);
  });
});
