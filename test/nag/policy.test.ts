import { globCovers } from '../../lib/nag/policy';

describe('globCovers: whether an IAM action pattern covers an action or a narrower pattern', () => {
  test.each([
    ['kms:*', 'kms:GenerateDataKey*', true],
    ['kms:GenerateDataKey*', 'kms:GenerateDataKey*', true],
    ['KMS:Generate*', 'kms:GenerateDataKey*', true],
    ['*', 'sns:Publish', true],
    ['sns:Publish', 'SNS:Publish', true],
    ['kms:GenerateDataKey', 'kms:GenerateDataKey*', false],
    ['kms:GenerateDataKey?', 'kms:GenerateDataKey*', false],
    ['kms:Decrypt', 'kms:DecryptX', false],
    ['sns:Pub.ish', 'sns:Publish', false],
  ])('%s covers %s: %s', (pattern, value, covered) => {
    expect(globCovers(pattern, value)).toBe(covered);
  });
});
