import { ControllableServer, json } from './controllable-server';

/** A recommendation engine: `GET /recommendations?customerId=` answers a few SKUs. */
export class FakeRecommendations extends ControllableServer {
  constructor() {
    super((req, _body, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (req.method !== 'GET' || url.pathname !== '/recommendations')
        return json(res, 404, { error: 'not found' });
      json(res, 200, { recommendations: [{ sku: 'GIFT-WRAP' }, { sku: 'SOCKS-1' }, { sku: 'MUG-2' }] });
    });
  }
}
