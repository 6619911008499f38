import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { IncomingMessage, ServerResponse, createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify, {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  LogController,
} from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';
import { Pool } from 'pg';
import { CheckoutReply, CheckoutRequest, CheckoutService } from './checkout';
import { DatabaseBusyError, DatabaseGate } from './db/gate';
import { InFlightWork } from './http/in-flight';
import { Metrics } from './metrics';
import { checkoutOutcome, outcomeOfStatus } from './orders/replies';
import { setStock } from './orders/stock';
import {
  IDEMPOTENCY_KEY_PATTERN,
  REQUEST_ID_FIELD,
  acceptedRequestId,
  checkoutTrace,
  orderIdOfHeader,
} from './orders/trace';

/** Runtime state the health routes report. */
export interface ServiceState {
  /** Migrations applied; /health/startup is 200 from then on. */
  started: boolean;
  /** SIGTERM received; /health/ready is 503 from then on. */
  draining: boolean;
}

export interface AppOptions {
  readonly pool: Pool;
  readonly checkout: CheckoutService;
  readonly metrics: Metrics;
  readonly state: ServiceState;
  readonly adminToken: string;
  /** Requests doing work, and the limit above which new ones are shed (MAX_IN_FLIGHT). */
  readonly work: InFlightWork;
  /** Requests waiting for a pooled connection above which new ones are shed. */
  readonly maxDbWaiting: number;
  /** Admission control at the database: new requests are shed while it is busy. */
  readonly databaseGate?: DatabaseGate;
  readonly maxEventLoopDelayMs: number;
  readonly retryAfterSeconds: number;
  readonly bodyLimitBytes: number;
  /** Time a client has to send its headers; then 408 and the connection closes. */
  readonly headersTimeoutMs: number;
  /** Time a client has to send its whole request (headers and body); then 408. */
  readonly requestTimeoutMs: number;
  /** How long an idle kept-alive connection stays open. */
  readonly keepAliveTimeoutMs: number;
  /**
   * Pino logger for request logs; none when omitted. Every line a request writes carries
   * `requestId`, and on the order routes `orderId` (see {@link buildHttpApp}). Checkouts
   * log one line each (`checkout`), other routes fastify's two (`incoming request`,
   * `request completed`); shed requests are counted (`RequestsShed`), not logged.
   */
  readonly logger?: FastifyBaseLogger;
}

const CHECKOUT_ROUTE = '/v1/checkout';
/** What a shed request gets, with 503 and Retry-After. */
const SHED_BODY = JSON.stringify({
  error: 'OVERLOADED',
  message: 'the service is shedding load; retry after the given delay',
});
/** The order id in a `GET /v1/orders/:id` URL (validated by the route's schema, not here). */
const ORDER_URL = /^\/v1\/orders\/([0-9a-fA-F-]{36})(?:[?#]|$)/;
const SKU = '^[A-Z0-9][A-Z0-9-]{0,31}$';
const ID = '^[A-Za-z0-9_-]{1,64}$';
/** Any case: a UUID's hex digits are case-insensitive (RFC 9562); stored and answered in lower case. */
const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

const checkoutSchema = {
  headers: {
    type: 'object',
    required: ['idempotency-key'],
    // 1 to 255 printable ASCII characters: no minimum (Stripe sets none; clients send
    // order numbers), spaces allowed inside (node trims them at the ends).
    properties: { 'idempotency-key': { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN } },
  },
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['customerId', 'items', 'paymentToken'],
    properties: {
      customerId: { type: 'string', pattern: ID },
      paymentToken: { type: 'string', pattern: '^[A-Za-z0-9_-]{4,128}$' },
      items: {
        type: 'array',
        minItems: 1,
        maxItems: 50,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['sku', 'quantity'],
          properties: {
            sku: { type: 'string', pattern: SKU },
            quantity: { type: 'integer', minimum: 1, maximum: 100 },
          },
        },
      },
    },
  },
} as const;

const inventorySchema = {
  params: { type: 'object', properties: { sku: { type: 'string', pattern: SKU } } },
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['available', 'priceCents'],
    properties: {
      available: { type: 'integer', minimum: 0, maximum: 10_000_000 },
      priceCents: { type: 'integer', minimum: 0, maximum: 100_000_000 },
    },
  },
} as const;

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Constant-time bearer check: compares digests, so neither content nor length leaks. The
 * scheme is case-insensitive (RFC 9110 section 11.1), the token is not.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const credentials = /^(\S+) +(.+)$/.exec(header ?? '');
  const presented = credentials?.[1].toLowerCase() === 'bearer' ? credentials[2] : '';
  return timingSafeEqual(digest(presented), digest(token)) && presented.length > 0;
}

/**
 * Order ids of checkout requests in flight, computed once per request by the route's child
 * logger factory and read by its handler (a SHA-1 per checkout is worth computing once:
 * the service is CPU-bound). Keyed by node's request, so nothing outlives it.
 */
const checkoutOrderIds = new WeakMap<IncomingMessage, string>();

/**
 * The checkout route's request logger: fastify's (bound to `requestId`) with `orderId`
 * bound too, from the first line on, when the `Idempotency-Key` header is acceptable.
 */
const checkoutChildLogger = (
  logger: FastifyBaseLogger,
  bindings: Bindings,
  opts: ChildLoggerOptions,
  rawReq: IncomingMessage,
): FastifyBaseLogger => {
  const orderId = orderIdOfHeader(rawReq.headers['idempotency-key']);
  if (orderId === undefined) return logger.child(bindings, opts);
  checkoutOrderIds.set(rawReq, orderId);
  return logger.child({ ...bindings, orderId }, opts);
};

/** The order route's request logger: `orderId` bound from the URL (lower case, as stored). */
const orderChildLogger = (
  logger: FastifyBaseLogger,
  bindings: Bindings,
  opts: ChildLoggerOptions,
  rawReq: IncomingMessage,
): FastifyBaseLogger => {
  const id = ORDER_URL.exec(rawReq.url ?? '')?.[1];
  return logger.child(id ? { ...bindings, orderId: id.toLowerCase() } : bindings, opts);
};

/**
 * Builds the HTTP app: routes, strict validation, client timeouts, load shedding, health.
 *
 * **Request ids and order ids in the logs** (docs/observability.md, "Tracing an order"):
 * every line a request writes carries `requestId`: the client's `x-request-id` when it is
 * an acceptable id (service/orders/trace.ts `acceptedRequestId`), else a random UUID. The
 * checkout route's lines also carry `orderId` from the first one on (derived from the
 * `Idempotency-Key`, known before any work), and so do the order route's (from its URL).
 * A checkout writes exactly one line at info level, `checkout`, with `requestId`,
 * `orderId`, `outcome` (service/orders/replies.ts `CheckoutOutcome`), `status` (HTTP),
 * `code` (the order status or error code) and `durationMs`; a checkout that fails with a
 * 5xx writes that line at error level, with the error. Its request id travels with the
 * order's outbox message.
 */
export function buildHttpApp(options: AppOptions): FastifyInstance {
  const { pool, checkout, metrics, state, work } = options;
  /**
   * The one line of an answered checkout (shed ones are counted, not logged). Written by
   * the root logger, with the ids as fields: the route's request logger is at warn, so
   * that fastify's own two lines per request are not written.
   */
  const logCheckout = (
    request: FastifyRequest,
    reply: FastifyReply,
    fields: { outcome: string; status: number; code: unknown; err?: Error },
  ) => {
    const line = {
      [REQUEST_ID_FIELD]: request.id,
      orderId: checkoutOrderIds.get(request.raw),
      ...fields,
      durationMs: Math.round(reply.elapsedTime),
    };
    if (fields.err) options.logger?.error(line, 'checkout');
    else options.logger?.info(line, 'checkout');
  };
  // Load shedding: refuse new work early, before latency collapses, on the routes that
  // do work. Health routes are never shed: a shed health check would pull a busy but
  // healthy instance out of the load balancer and push its load onto the others.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  let recentLoopDelayMs = 0;
  const sampler = setInterval(() => {
    recentLoopDelayMs = loopDelay.percentile(99) / 1e6;
    loopDelay.reset();
  }, 500);
  sampler.unref();
  const gate = options.databaseGate;
  /**
   * Four signals of saturation: too much work in progress, a starved event loop, a queue
   * for database connections, and the database gate, where a new checkout would wait
   * longer than its budget (the database, not Node, is usually the limit). The gate is
   * what keeps admitted requests fast under overload (service/db/gate.ts).
   */
  const saturated = () =>
    work.full ||
    recentLoopDelayMs > options.maxEventLoopDelayMs ||
    pool.waitingCount > options.maxDbWaiting ||
    gate?.busy === true;
  const shedHeaders = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(SHED_BODY)),
    'retry-after': String(options.retryAfterSeconds),
  };
  /**
   * Early shedding, before fastify sees the request and before its body is read: the 503
   * is written from constants, with no request object, request id, child logger, hooks
   * or serialization. Under 3x the peak rate most requests are shed, on the same cores
   * as the admitted ones (docs/checkout-service.md#benchmark). The body, if any, is
   * read and dropped by node, and the connection stays usable.
   */
  const shedEarly = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '';
    if (!(url.startsWith('/v1/') || url.startsWith('/admin/')) || !saturated()) return false;
    metrics.increment('RequestsShed');
    res.writeHead(503, shedHeaders).end(SHED_BODY);
    return true;
  };
  // Slow clients: node answers 408 and closes a connection whose headers, or whole
  // request, take longer than this (200 clients trickling a body byte every 5 s held
  // every slot for 40 s when nothing bounded them). Node checks once a second.
  const http = {
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    connectionsCheckingInterval: 1_000,
  };
  // Backstop for a connection on which nothing at all moves (a client that stops
  // reading): longer than any legitimate silence, a kept-alive idle period included.
  const connectionTimeoutMs = options.keepAliveTimeoutMs + 30_000;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // Fastify's own HTTP/1 server (lib/server.js), with the early shedding in front.
    serverFactory: (handler) => {
      const server = createServer(http, (req, res) => {
        if (!shedEarly(req, res)) handler(req, res);
      });
      server.keepAliveTimeout = options.keepAliveTimeoutMs;
      server.requestTimeout = options.requestTimeoutMs;
      server.setTimeout(connectionTimeoutMs);
      return server;
    },
    bodyLimit: options.bodyLimitBytes,
    http,
    requestTimeout: options.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    connectionTimeout: connectionTimeoutMs,
    // The client's x-request-id is used only when it is an acceptable id (bounded, no
    // characters to escape): it goes into every log line and the order's SQS message.
    requestIdHeader: false,
    genReqId: (req) => acceptedRequestId(req.headers['x-request-id']) ?? randomUUID(),
    // `requestId`, not fastify's `reqId`: the name the workers' lines use too.
    logController: new LogController({ requestIdLogLabel: REQUEST_ID_FIELD }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: false },
    },
  });

  const shed = (reply: FastifyReply) => {
    metrics.increment('RequestsShed');
    return reply.code(503).headers(shedHeaders).send(SHED_BODY);
  };

  /**
   * Runs a route's work in an in-flight slot: taken once the body has arrived and been
   * validated (a client still sending is not work), released when the work settles, not
   * when the client goes away. Not a preHandler/onResponse pair: fastify runs onResponse
   * only if the response is written, and onRequestAbort fires while the work still runs.
   */
  const counted =
    <R extends { Params?: unknown; Body?: unknown; Headers?: unknown }>(
      handler: (request: FastifyRequest<R>, reply: FastifyReply) => Promise<unknown>,
    ) =>
    async (request: FastifyRequest<R>, reply: FastifyReply) => {
      if (!work.tryEnter()) return shed(reply);
      return work.run(() => handler(request, reply));
    };

  // Only JSON bodies: fastify's default text/plain parser handed a JSON body sent as
  // text/plain to the validator as a string (400 instead of 415).
  app.removeContentTypeParser('text/plain');
  app.addHook('onClose', async () => {
    clearInterval(sampler);
    loopDelay.disable();
  });

  app.setErrorHandler(
    (error: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => {
      const isCheckout = request.routeOptions.url === CHECKOUT_ROUTE;
      const refuse = (statusCode: number, body: { error: string; message: string }) => {
        if (isCheckout) {
          logCheckout(request, reply, {
            outcome: outcomeOfStatus(statusCode),
            status: statusCode,
            code: body.error,
          });
        }
        return reply.code(statusCode).send(body);
      };
      // The gate refused a new checkout's first statement: shed, like any other signal.
      if (error instanceof DatabaseBusyError) return shed(reply);
      if (error.validation) {
        return refuse(400, { error: 'INVALID_REQUEST', message: error.message });
      }
      if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        return refuse(415, { error: 'UNSUPPORTED_MEDIA_TYPE', message: 'the body must be application/json' });
      }
      const status = error.statusCode ?? 500;
      if (status < 500) {
        return refuse(status, { error: error.code ?? 'BAD_REQUEST', message: error.message });
      }
      // A checkout's failure is its one line; other routes' failures are logged by the
      // request's logger (with its requestId, and orderId on the order route).
      if (isCheckout)
        logCheckout(request, reply, { outcome: 'FAILED', status: 503, code: 'UNAVAILABLE', err: error });
      else request.log.error({ err: error }, 'request failed');
      // Database unreachable or pool exhausted: nothing was committed, the client may retry.
      return reply.code(503).header('retry-after', String(options.retryAfterSeconds)).send({
        error: 'UNAVAILABLE',
        message: 'temporarily unable to process the request; retry after the given delay',
      });
    },
  );

  app.post<{ Body: CheckoutRequest; Headers: { 'idempotency-key': string } }>(
    CHECKOUT_ROUTE,
    // fastify's two lines per request (`incoming request`, `request completed`) are off
    // here: the `checkout` line below says more in one, and under overload every shed
    // request logged twice cost CPU the checkouts needed (bench/checkout.ts).
    { schema: checkoutSchema, logLevel: 'warn', childLoggerFactory: checkoutChildLogger },
    counted(async (request, reply) => {
      const key = request.headers['idempotency-key'];
      // The schema accepted the key, so the logger factory computed its order id.
      const trace = checkoutTrace(key, request.id, checkoutOrderIds.get(request.raw));
      const result: CheckoutReply = await checkout.checkout(key, request.body, trace);
      if (result.retryAfterSeconds) reply.header('retry-after', String(result.retryAfterSeconds));
      logCheckout(request, reply, {
        outcome: checkoutOutcome(result),
        status: result.statusCode,
        code: result.body.status ?? result.body.error,
      });
      return reply.code(result.statusCode).send(result.body);
    }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: UUID } } } },
      childLoggerFactory: orderChildLogger,
    },
    counted(async (request, reply) => {
      const { rows } = await pool.query(
        `SELECT o.id, o.customer_id, o.status, o.amount_cents, o.currency, o.created_at,
                COALESCE(json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity,
                  'unitPriceCents', i.unit_price_cents) ORDER BY i.sku) FILTER (WHERE i.sku IS NOT NULL), '[]') AS items
           FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
          WHERE o.id = $1 GROUP BY o.id`,
        [request.params.id.toLowerCase()],
      );
      if (rows.length === 0) return reply.code(404).send({ error: 'NOT_FOUND', message: 'no such order' });
      const o = rows[0];
      return {
        orderId: o.id,
        customerId: o.customer_id,
        status: o.status,
        amountCents: Number(o.amount_cents),
        currency: o.currency,
        items: o.items,
        createdAt: o.created_at,
      };
    }),
  );

  app.put<{ Params: { sku: string }; Body: { available: number; priceCents: number } }>(
    '/admin/inventory/:sku',
    {
      schema: inventorySchema,
      onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
        if (!bearerMatches(request.headers.authorization, options.adminToken)) {
          return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'UNAUTHORIZED' });
        }
      },
    },
    counted(async (request) => {
      const { sku } = request.params;
      const { available, priceCents } = request.body;
      // A count: the inventory reconciler measures drift from what this records.
      await setStock(pool, sku, available, priceCents);
      return { sku, available, priceCents };
    }),
  );

  app.get('/health/live', async () => ({ status: 'ok' }));

  app.get('/health/startup', async (_request, reply) =>
    state.started ? { status: 'ok' } : reply.code(503).send({ status: 'starting' }),
  );

  app.get('/health/ready', async (_request, reply) => {
    if (state.draining) return reply.code(503).send({ status: 'draining' });
    if (!state.started) return reply.code(503).send({ status: 'starting' });
    try {
      await pool.query('SELECT 1');
      return { status: 'ok' };
    } catch {
      return reply.code(503).send({ status: 'database-unreachable' });
    }
  });

  return app;
}
