import { Logger } from '@aws-lambda-powertools/logger';
import {
  addRecordKeys,
  currentRecordKeys,
  inRecordScope,
  recordScopedLogger,
  traceKeysOfBody,
} from '../../../lambda/shared/record-log';
import { FakeLogger, lambdaContext } from '../../helpers/lambda';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('recordScopedLogger', () => {
  test('outside a record, a line is written as given', () => {
    const fake = new FakeLogger();
    recordScopedLogger(fake).info('hello', { a: 1 });
    expect(fake.entries).toEqual([{ level: 'info', message: 'hello', extra: { a: 1 } }]);
  });

  test("inside a record, every line carries the record's keys; a field the call names wins", async () => {
    const fake = new FakeLogger();
    const log = recordScopedLogger(fake);
    await inRecordScope('msg-1', async () => {
      log.info('before parse');
      addRecordKeys({ orderId: 'order-1', eventId: 'outbox-1', requestId: 'req-1' });
      log.warn('after parse', { eventId: 'named-by-the-call', receiveCount: 2 });
      log.error('failed', new Error('boom'));
    });
    expect(fake.entries).toEqual([
      { level: 'info', message: 'before parse', extra: { messageId: 'msg-1' } },
      {
        level: 'warn',
        message: 'after parse',
        extra: {
          messageId: 'msg-1',
          orderId: 'order-1',
          eventId: 'named-by-the-call',
          requestId: 'req-1',
          receiveCount: 2,
        },
      },
      {
        level: 'error',
        message: 'failed',
        extra: {
          messageId: 'msg-1',
          orderId: 'order-1',
          eventId: 'outbox-1',
          requestId: 'req-1',
          error: expect.any(Error),
        },
      },
    ]);
  });

  test('records in parallel each write their own keys, never the other one\u2019s', async () => {
    // GIVEN two records handled at once, each logging after the other has set its keys
    const fake = new FakeLogger();
    const log = recordScopedLogger(fake);
    const record = (n: number) =>
      inRecordScope(`msg-${n}`, async () => {
        addRecordKeys({ orderId: `order-${n}`, requestId: `req-${n}` });
        await tick();
        log.info('working');
        await tick();
        log.info('done');
      });
    // WHEN they run interleaved
    await Promise.all([record(1), record(2)]);
    // THEN every line names the record that wrote it
    expect(fake.entries.map((e) => e.extra)).toEqual(
      expect.arrayContaining([
        { messageId: 'msg-1', orderId: 'order-1', requestId: 'req-1' },
        { messageId: 'msg-2', orderId: 'order-2', requestId: 'req-2' },
      ]),
    );
    for (const entry of fake.entries) {
      const n = String(entry.extra.messageId).slice(-1);
      expect(entry.extra).toEqual({ messageId: `msg-${n}`, orderId: `order-${n}`, requestId: `req-${n}` });
    }
    expect(fake.entries).toHaveLength(4);
  });

  test('a record handled after another starts with none of its keys', async () => {
    const fake = new FakeLogger();
    const log = recordScopedLogger(fake);
    await inRecordScope('msg-1', async () => addRecordKeys({ orderId: 'order-1', requestId: 'req-1' }));
    await inRecordScope('msg-2', async () => {
      addRecordKeys({ orderId: 'order-2' }); // an older message: no request id
      log.info('second');
    });
    log.info('between invocations');
    expect(fake.entries.map((e) => e.extra)).toEqual([{ messageId: 'msg-2', orderId: 'order-2' }, {}]);
    expect(currentRecordKeys()).toBeUndefined();
  });

  test('wrapping twice is the same logger, and its other members are the logger\u2019s own', () => {
    const fake = new FakeLogger();
    const log = recordScopedLogger(fake);
    expect(recordScopedLogger(log)).toBe(log);
    log.info('x');
    expect(log.entries).toBe(fake.entries);
    expect(log.at('info')).toHaveLength(1);
  });

  describe("with Powertools' Logger (its private fields, its JSON lines)", () => {
    const saved = process.env.POWERTOOLS_DEV;
    beforeAll(() => {
      process.env.POWERTOOLS_DEV = 'true'; // lines through the global console, which the test reads
    });
    afterAll(() => {
      if (saved === undefined) delete process.env.POWERTOOLS_DEV;
      else process.env.POWERTOOLS_DEV = saved;
    });

    test('each line is one JSON object with the record keys at the top level, next to the context', async () => {
      const written: string[] = [];
      const spies = (['info', 'warn', 'error'] as const).map((level) =>
        jest
          .spyOn(console, level)
          .mockImplementation((...args: unknown[]) => void written.push(String(args[0]))),
      );
      try {
        const log = recordScopedLogger(new Logger({ serviceName: 'trace-test' }));
        log.addContext(lambdaContext());
        await inRecordScope('msg-9', async () => {
          addRecordKeys({ orderId: 'order-9', eventId: 'outbox-9', requestId: 'req-9' });
          log.info('applied', { via: 'log' });
        });
        const lines = written.map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(lines).toEqual([
          expect.objectContaining({
            level: 'INFO',
            message: 'applied',
            service: 'trace-test',
            function_name: 'test-worker',
            messageId: 'msg-9',
            orderId: 'order-9',
            eventId: 'outbox-9',
            requestId: 'req-9',
            via: 'log',
          }),
        ]);
      } finally {
        for (const spy of spies) spy.mockRestore();
      }
    });
  });
});

describe('traceKeysOfBody', () => {
  test('reads the order, event and request ids of a body that failed validation', () => {
    expect(
      traceKeysOfBody(
        JSON.stringify({ orderId: '42', eventId: 'outbox-1', requestId: 'r', paymentToken: 'tok' }),
      ),
    ).toEqual({
      orderId: '42',
      eventId: 'outbox-1',
      requestId: 'r',
    });
  });

  test.each([
    ['not JSON', '{"orderId": '],
    ['not an object', '"order"'],
    ['null', 'null'],
    [
      'ids that are not bounded strings',
      JSON.stringify({ orderId: 7, eventId: 'e'.repeat(201), requestId: ['r'] }),
    ],
  ])('reads nothing from %s', (_, body) => {
    const keys = traceKeysOfBody(body);
    expect([keys.orderId, keys.eventId, keys.requestId]).toEqual([undefined, undefined, undefined]);
  });
});
