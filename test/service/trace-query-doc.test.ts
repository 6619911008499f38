/**
 * docs/observability.md, "Tracing an order", against the code: the Logs Insights queries
 * read the field names the service and the workers write (taken from lines they really
 * write, not from a list kept here), and the one-liner that turns an Idempotency-Key into
 * an order id gives the service's order id. The doc cannot drift from the code unnoticed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { logFulfilment } from '../../lambda/order-events/fulfilment';
import { createOrderEventsHandler } from '../../lambda/order-events/handler';
import { createPaymentRetryHandler } from '../../lambda/payment-retry/handler';
import { ORDER_ID_NAMESPACE, orderIdForKey } from '../../service/orders/order-id';
import { REQUEST_ID_FIELD } from '../../service/orders/trace';
import { InMemoryPersistenceLayer } from '../helpers/in-memory-idempotency';
import { FakeMetrics, lambdaContext, sqsEvent, sqsRecord } from '../helpers/lambda';
import { CHECKOUT_BODY, appWithFakeCheckout, capturingLogger, listen, send } from './helpers/log-capture';

const DOC = join(__dirname, '..', '..', 'docs', 'observability.md');
const SECTION = '## Tracing an order';

/** The section's text, from its heading to the next section of the same level. */
function section(): string {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`docs/observability.md has no "${SECTION}" section`);
  const rest = doc.slice(start + SECTION.length + 2);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The fenced code blocks of a Markdown text. */
const codeBlocks = (markdown: string): string[] =>
  [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

/** A documented Logs Insights query: the fields it shows, the one it filters on, how it sorts. */
interface DocumentedQuery {
  readonly text: string;
  readonly fields: string[];
  readonly filterField: string;
  readonly sort: string;
}

function parseQuery(text: string): DocumentedQuery {
  const fields = /^fields (.+)$/m.exec(text)?.[1];
  const filter = /^\| filter ([A-Za-z_][\w.]*) = "<[^">]+>"$/m.exec(text)?.[1];
  const sort = /^\| sort (.+)$/m.exec(text)?.[1];
  if (!fields || !filter || !sort) {
    throw new Error(
      `a query of "${SECTION}" is not "fields ... | filter <field> = "<...>" | sort ...":\n${text}`,
    );
  }
  return { text, fields: fields.split(',').map((f) => f.trim()), filterField: filter, sort };
}

/** The documented queries: the code blocks with a `| filter`. */
const documentedQueries = () =>
  codeBlocks(section())
    .filter((b) => b.includes('| filter'))
    .map(parseQuery);

/** A line the service writes for a checkout (its one `checkout` line), through the real app. */
async function serviceLine(key: string, requestId: string): Promise<Record<string, unknown>> {
  const { logger, lines } = capturingLogger();
  const { app } = appWithFakeCheckout(
    async ({ trace }) => ({
      statusCode: 201,
      body: { orderId: trace!.orderId, status: 'CONFIRMED', recommendations: [], degraded: [] },
    }),
    logger,
  );
  try {
    await listen(app, lines);
    await send(
      app,
      'POST',
      '/v1/checkout',
      { 'idempotency-key': key, 'x-request-id': requestId },
      CHECKOUT_BODY,
    );
  } finally {
    await app.close();
  }
  expect(lines).toHaveLength(1);
  return lines[0];
}

/** The JSON lines Powertools' Logger writes while the two SQS workers handle one message each. */
async function workerLines(orderId: string, requestId: string): Promise<Record<string, unknown>[]> {
  const saved = process.env.POWERTOOLS_DEV;
  process.env.POWERTOOLS_DEV = 'true'; // Powertools writes through the global console
  const written: string[] = [];
  const spies = (['info', 'warn', 'error'] as const).map((level) =>
    jest.spyOn(console, level).mockImplementation((...args: unknown[]) => void written.push(String(args[0]))),
  );
  try {
    const common = {
      metrics: new FakeMetrics(),
      persistenceStore: new InMemoryPersistenceLayer(),
      expiresAfterSeconds: 86_400,
    };
    const eventsLogger = new Logger({ serviceName: 'order-events' });
    await createOrderEventsHandler({ ...common, logger: eventsLogger, apply: logFulfilment(eventsLogger) })(
      sqsEvent(
        sqsRecord(JSON.stringify({ eventId: 'outbox-1', type: 'OrderConfirmed', orderId, requestId })),
      ),
      lambdaContext(),
    );
    await createPaymentRetryHandler({
      ...common,
      persistenceStore: new InMemoryPersistenceLayer(),
      logger: new Logger({ serviceName: 'payment-retry' }),
      retry: async (id) => ({ kind: 'confirmed', orderId: id, chargeId: 'ch_1' }),
    })(
      sqsEvent(
        sqsRecord(
          JSON.stringify({
            eventId: 'outbox-2',
            type: 'PaymentDeferred',
            orderId,
            requestId,
            amountCents: 1,
            currency: 'EUR',
          }),
        ),
      ),
      lambdaContext(),
    );
  } finally {
    for (const spy of spies) spy.mockRestore();
    if (saved === undefined) delete process.env.POWERTOOLS_DEV;
    else process.env.POWERTOOLS_DEV = saved;
  }
  return written.map((w) => JSON.parse(w) as Record<string, unknown>);
}

describe(`docs/observability.md, "${SECTION}"`, () => {
  const key = 'doc-key-2f0c9a';
  const orderId = orderIdForKey(key);
  const requestId = 'doc-request-1';
  let service: Record<string, unknown>;
  let workers: Record<string, unknown>[];

  beforeAll(async () => {
    service = await serviceLine(key, requestId);
    workers = await workerLines(orderId, requestId);
  });

  test('the lines the queries are checked against were written: the checkout, and one per worker', () => {
    expect(service).toMatchObject({ msg: 'checkout', orderId, [REQUEST_ID_FIELD]: requestId });
    expect(workers.map((w) => w.message)).toEqual([
      'order event applied (no FULFILMENT_URL set)',
      'deferred order confirmed',
    ]);
  });

  test('it documents one query by order id and one by request id, filtering on the fields the code writes', () => {
    const queries = documentedQueries();
    expect(queries.map((q) => q.filterField)).toEqual(['orderId', REQUEST_ID_FIELD]);
    for (const { filterField } of queries) {
      // the field that joins the log groups: on the service's line and on every worker line
      expect(service[filterField]).toBe(filterField === 'orderId' ? orderId : requestId);
      for (const line of workers)
        expect(line[filterField]).toBe(filterField === 'orderId' ? orderId : requestId);
    }
  });

  test('every field a query shows is one the service or a worker writes; they sort oldest first', () => {
    const written = new Set([...Object.keys(service), ...workers.flatMap((w) => Object.keys(w))]);
    for (const query of documentedQueries()) {
      const missing = query.fields.filter((f) => !f.startsWith('@') && !written.has(f));
      expect({ query: query.text, missing }).toEqual({ query: query.text, missing: [] });
      expect(query.fields.slice(0, 2)).toEqual(['@timestamp', '@log']);
      expect(query.sort).toBe('@timestamp asc');
    }
  });

  describe('the order id of an Idempotency-Key', () => {
    const oneLiner = () => {
      const line = codeBlocks(section())
        .flatMap((b) => b.split('\n'))
        .find((l) => l.startsWith('python3 -c '));
      const code = line && /^python3 -c '([^']+)'/.exec(line)?.[1];
      if (!code) throw new Error(`"${SECTION}" has no python3 -c '...' one-liner`);
      return code;
    };

    test("the one-liner's namespace is the service's", () => {
      expect(/uuid\.UUID\("([0-9a-f-]{36})"\)/.exec(oneLiner())?.[1]).toBe(ORDER_ID_NAMESPACE);
    });

    const python = spawnSync('python3', ['--version']).status === 0;
    (python ? test : test.skip)(
      'run, it gives the order id the service derives (python3 is installed here)',
      () => {
        for (const k of [
          'order-1234',
          'a key with spaces',
          '550e8400-e29b-41d4-a716-446655440000',
          '~!@#$%^&*()',
        ]) {
          const run = spawnSync('python3', ['-c', oneLiner(), k], { encoding: 'utf8' });
          expect(run.stderr).toBe('');
          expect(run.stdout.trim()).toBe(orderIdForKey(k));
        }
      },
    );
  });
});
