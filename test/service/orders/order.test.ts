import { MAX_UNITS_PER_SKU, mergeLines, requestHash } from '../../../service/orders/order';

describe('mergeLines', () => {
  test('distinct SKUs in order pass as they are', () => {
    expect(
      mergeLines([
        { sku: 'A', quantity: 1 },
        { sku: 'B', quantity: 2 },
      ]),
    ).toEqual({ skus: ['A', 'B'], quantities: [1, 2] });
  });

  test('lines are sorted by SKU (the order inventory is locked in) and duplicates summed', () => {
    expect(
      mergeLines([
        { sku: 'C', quantity: 1 },
        { sku: 'A', quantity: 2 },
        { sku: 'C', quantity: 3 },
      ]),
    ).toEqual({ skus: ['A', 'C'], quantities: [2, 4] });
  });

  test('duplicates may add up to the per-SKU cap, not past it', () => {
    const half = MAX_UNITS_PER_SKU / 2;
    expect(
      mergeLines([
        { sku: 'A', quantity: half },
        { sku: 'A', quantity: half },
      ]),
    ).toEqual({ skus: ['A'], quantities: [MAX_UNITS_PER_SKU] });
    const fifty = Array.from({ length: 50 }, () => ({ sku: 'HOT-1', quantity: 100 }));
    expect(mergeLines(fifty)).toEqual({
      invalid: 'items: SKU HOT-1 adds up to 5000 units over its lines; at most 100 per SKU',
    });
  });
});

describe('requestHash', () => {
  test('is the hash of the canonical JSON, unchanged since the first release', () => {
    // Keys stored by instances of an older release must still match during a rolling deploy.
    expect(
      requestHash({ customerId: 'c', items: [{ sku: 'A', quantity: 1 }], paymentToken: 'tok_visa' }),
    ).toBe('7e78967c732e3c797ac416a16969f758d58ee7fc41f19f8d0f6ae47a211a23b5');
  });
});
