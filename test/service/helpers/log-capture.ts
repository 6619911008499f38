import { FastifyInstance } from 'fastify';
import pino, { Logger } from 'pino';
import { Pool } from 'pg';
import { buildHttpApp } from '../../../service/app';
import { CheckoutReply, CheckoutRequest, CheckoutService } from '../../../service/checkout';
import { InFlightWork } from '../../../service/http/in-flight';
import { Metrics } from '../../../service/metrics';
import { CheckoutTrace } from '../../../service/orders/trace';
import { ADMIN_TOKEN } from './harness';

/** One JSON line pino wrote, parsed. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** Pino levels by name, as they appear in the lines. */
export const LEVEL = { info: 30, warn: 40, error: 50 } as const;

/** A pino logger at `level` whose lines are kept, parsed, in `lines` (synchronously). */
export function capturingLogger(level = 'info'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

/** What the fake checkout was asked, per call. */
export interface CheckoutCall {
  readonly key: string;
  readonly request: CheckoutRequest;
  readonly trace: CheckoutTrace | undefined;
}

/**
 * The HTTP app (service/app.ts) over a fake checkout and a pool that finds nothing: the
 * checkout answers what `answer` returns (or throws), and `calls` records what it was
 * given. No database: for what the HTTP layer logs. Start it with {@link listen}.
 */
export function appWithFakeCheckout(
  answer: (call: CheckoutCall) => Promise<CheckoutReply>,
  logger: Logger | undefined,
): { app: FastifyInstance; calls: CheckoutCall[] } {
  const calls: CheckoutCall[] = [];
  const checkout = {
    checkout: async (key: string, request: CheckoutRequest, trace?: CheckoutTrace) => {
      const call = { key, request, trace };
      calls.push(call);
      return answer(call);
    },
  } as unknown as CheckoutService;
  const pool = { waitingCount: 0, query: async () => ({ rows: [] }) } as unknown as Pool;
  const app = buildHttpApp({
    pool,
    checkout,
    metrics: new Metrics(),
    state: { started: true, draining: false },
    adminToken: ADMIN_TOKEN,
    work: new InFlightWork(100),
    maxDbWaiting: 100,
    maxEventLoopDelayMs: 60_000,
    retryAfterSeconds: 1,
    bodyLimitBytes: 16_384,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 5_000,
    logger,
  });
  return { app, calls };
}

/**
 * Lets `app` listen on a free loopback port (light-my-request's `inject` does not load
 * under jest: an ESM-only dependency), and empties `lines` of what listening logged.
 */
export async function listen(app: FastifyInstance, lines?: LogLine[]): Promise<void> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  if (lines) lines.length = 0;
}

/** Sends one request to `app`, which {@link listen} started. */
export async function send(
  app: FastifyInstance,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const { port } = app.server.address() as { port: number };
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A valid checkout body. */
export const CHECKOUT_BODY = {
  customerId: 'cust-trace',
  items: [{ sku: 'SKU-TRACE', quantity: 1 }],
  paymentToken: 'tok_visa',
};
