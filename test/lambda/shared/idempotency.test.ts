import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { IdempotencyTable } from '../../../lib/constructs/idempotency-table';
import { IDEMPOTENCY_TABLE_ATTRIBUTES } from '../../../lambda/shared/idempotency';

test("the workers' Powertools persistence layer reads the idempotency table's key and TTL attribute", () => {
  // GIVEN the table the stack deploys
  const stack = new Stack();
  new IdempotencyTable(stack, 'Table');
  const table = Object.values(Template.fromStack(stack).findResources('AWS::DynamoDB::GlobalTable'))[0];
  // THEN its only key is the layer's keyAttr (a string) and its TTL reads the layer's expiryAttr
  expect(table.Properties.KeySchema).toEqual([
    { AttributeName: IDEMPOTENCY_TABLE_ATTRIBUTES.keyAttr, KeyType: 'HASH' },
  ]);
  expect(table.Properties.AttributeDefinitions).toEqual([
    { AttributeName: IDEMPOTENCY_TABLE_ATTRIBUTES.keyAttr, AttributeType: 'S' },
  ]);
  expect(table.Properties.TimeToLiveSpecification).toEqual({
    AttributeName: IDEMPOTENCY_TABLE_ATTRIBUTES.expiryAttr,
    Enabled: true,
  });
});
