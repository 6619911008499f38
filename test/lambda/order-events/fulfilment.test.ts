import { randomUUID } from 'node:crypto';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { httpFulfilment, logFulfilment, parseFulfilmentUrl } from '../../../lambda/order-events/fulfilment';
import { DownstreamError, isTransient } from '../../../lambda/shared/errors';
import { FakeLogger } from '../../helpers/lambda';

interface Received {
  readonly method?: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A fulfilment endpoint on 127.0.0.1 whose answer each test sets. */
let server: Server;
let url: URL;
let answer: (res: ServerResponse) => void;
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ method: req.method, headers: req.headers, body });
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/events`);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received.length = 0;
  answer = (res) => res.writeHead(202).end();
});

const event = () => ({
  eventId: `outbox-${Date.now()}`,
  type: 'OrderConfirmed',
  orderId: randomUUID(),
  items: [],
});

describe('httpFulfilment', () => {
  test('POSTs the event as JSON with its eventId as Idempotency-Key', async () => {
    const e = event();
    await expect(httpFulfilment(url, 1_000)(e)).resolves.toEqual({
      eventId: e.eventId,
      type: 'OrderConfirmed',
      orderId: e.orderId,
      via: 'fulfilment',
    });
    expect(received).toEqual([
      {
        method: 'POST',
        headers: expect.objectContaining({
          'idempotency-key': e.eventId,
          'content-type': 'application/json',
        }),
        body: JSON.stringify(e),
      },
    ]);
  });

  test.each([
    [503, true],
    [429, true],
    [400, false],
  ])('an answer %i fails with a DownstreamError (transient: %s)', async (status, transient) => {
    answer = (res) => res.writeHead(status).end('no');
    const failure = await httpFulfilment(url, 1_000)(event()).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DownstreamError);
    expect(failure).toMatchObject({ status, message: `fulfilment endpoint answered ${status}` });
    expect(isTransient(failure)).toBe(transient);
  });

  test('an endpoint that does not answer in time fails, transient, within the timeout', async () => {
    answer = () => undefined; // never responds
    const started = Date.now();
    const failure = await httpFulfilment(url, 200)(event()).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DownstreamError);
    expect((failure as Error).message).toMatch(/did not answer within 200 ms/);
    expect(isTransient(failure)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('parseFulfilmentUrl', () => {
  test('accepts https, and plain http to loopback only', () => {
    expect(parseFulfilmentUrl('https://fulfilment.example.com/v1/events').host).toBe(
      'fulfilment.example.com',
    );
    expect(parseFulfilmentUrl('http://127.0.0.1:9000/e').port).toBe('9000');
  });

  test.each([
    ['http://fulfilment.example.com/events', /must be an https:\/\/ URL/],
    ['ftp://x', /must be an https:\/\/ URL/],
    ['not a url', /is not a URL/],
  ])('refuses %s', (raw, message) => {
    expect(() => parseFulfilmentUrl(raw)).toThrow(message);
  });
});

test('without an endpoint, an event is applied as one log record', async () => {
  const logger = new FakeLogger();
  const e = event();
  await expect(logFulfilment(logger)(e)).resolves.toMatchObject({ via: 'log', eventId: e.eventId });
  expect(logger.entries).toEqual([
    {
      level: 'info',
      message: 'order event applied (no FULFILMENT_URL set)',
      extra: { eventId: e.eventId, type: 'OrderConfirmed', orderId: e.orderId },
    },
  ]);
});
