import { parseProbeEndpoint, parseProbeEndpoints } from '../../../lambda/certificate-probe/contract';

describe('probe endpoints', () => {
  test.each([
    ['shop.example.com', { host: 'shop.example.com', port: 443, label: 'shop.example.com' }],
    [
      'us-east-1.shop.example.com:8443',
      { host: 'us-east-1.shop.example.com', port: 8443, label: 'us-east-1.shop.example.com:8443' },
    ],
    ['localhost:443', { host: 'localhost', port: 443, label: 'localhost' }],
    ['127.0.0.1:9443', { host: '127.0.0.1', port: 9443, label: '127.0.0.1:9443' }],
  ])('%s parses (the Endpoint dimension drops port 443)', (spec, expected) => {
    expect(parseProbeEndpoint(spec)).toEqual(expected);
  });

  test.each([
    'https://shop.example.com',
    'Shop.Example.com',
    'shop.example.com:0',
    'shop.example.com:70000',
    'a b',
    '',
  ])('%j is refused with the expected form', (spec) => {
    expect(() => parseProbeEndpoint(spec)).toThrow(/must be host or host:port, such as "shop.example.com"/);
  });

  test('PROBE_ENDPOINTS is a non-empty JSON array without repeats', () => {
    expect(parseProbeEndpoints('["a.example.com","b.example.com:8443"]').map((e) => e.label)).toEqual([
      'a.example.com',
      'b.example.com:8443',
    ]);
    expect(() => parseProbeEndpoints('a.example.com')).toThrow(/must be a JSON array/);
    expect(() => parseProbeEndpoints('[]')).toThrow(/non-empty JSON array/);
    expect(() => parseProbeEndpoints('["a.example.com","a.example.com:443"]')).toThrow(
      /lists a.example.com more than once/,
    );
  });
});
