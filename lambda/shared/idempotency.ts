/**
 * How the workers' Powertools DynamoDB persistence layer reads the idempotency table
 * (lib/constructs/idempotency-table.ts): partition key `id` (string) and the TTL
 * attribute `expiration` (epoch seconds, which Powertools writes and DynamoDB's TTL
 * reads). test/lambda/shared/idempotency.test.ts holds the two together.
 */
export const IDEMPOTENCY_TABLE_ATTRIBUTES = { keyAttr: 'id', expiryAttr: 'expiration' } as const;
