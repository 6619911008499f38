import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify, { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Pool } from 'pg';
import { CheckoutRequest, CheckoutService } from './checkout';
import { DatabaseBusyError, DatabaseGate } from './db/gate';
import { InFlightWork } from './http/in-flight';
import { Metrics } from './metrics';
import { setStock } from './orders/stock';

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
   * Pino logger for request logs (with request ids); none when omitted. Checkouts log one
   * line each (`checkout`), other routes fastify's two (`incoming request`, `request
   * completed`); shed requests are counted (`RequestsShed`), not logged.
   */
  readonly logger?: FastifyBaseLogger;
}

const CHECKOUT_ROUTE = '/v1/checkout';
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
    properties: { 'idempotency-key': { type: 'string', pattern: '^[\\x20-\\x7e]{1,255}$' } },
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

/** Builds the HTTP app: routes, strict validation, client timeouts, load shedding, health. */
export function buildHttpApp(options: AppOptions): FastifyInstance {
  const { pool, checkout, metrics, state, work } = options;
  /** One line per answered checkout (shed ones are counted, not logged). */
  const logCheckout = (reqId: string, fields: Record<string, unknown>) =>
    options.logger?.info({ reqId, ...fields }, 'checkout');
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimitBytes,
    // Slow clients: node answers 408 and closes a connection whose headers, or whole
    // request, take longer than this (200 clients trickling a body byte every 5 s held
    // every slot for 40 s when nothing bounded them). Node checks once a second.
    http: {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      connectionsCheckingInterval: 1_000,
    },
    requestTimeout: options.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // Backstop for a connection on which nothing at all moves (a client that stops
    // reading): longer than any legitimate silence, a kept-alive idle period included.
    connectionTimeout: options.keepAliveTimeoutMs + 30_000,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: false },
    },
  });

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

  const shed = (reply: FastifyReply) => {
    metrics.increment('RequestsShed');
    return reply
      .code(503)
      .header('retry-after', String(options.retryAfterSeconds))
      .send({ error: 'OVERLOADED', message: 'the service is shedding load; retry after the given delay' });
  };

  // Early shedding, before the body is read: four signals of saturation - too much work
  // in progress, a starved event loop, a queue for database connections, and the
  // database gate, where a new checkout would wait longer than its budget (the database,
  // not Node, is usually the limit). The gate is what keeps admitted requests fast under
  // overload (service/db/gate.ts): shedding costs the refused request a 503 in
  // microseconds instead of every admitted one a wait.
  const gate = options.databaseGate;
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/') && !request.url.startsWith('/admin/')) return;
    if (
      work.full ||
      recentLoopDelayMs > options.maxEventLoopDelayMs ||
      pool.waitingCount > options.maxDbWaiting ||
      gate?.busy
    ) {
      return shed(reply);
    }
  });

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
      const refuse = (statusCode: number, body: { error: string; message: string }) => {
        if (request.routeOptions.url === CHECKOUT_ROUTE) {
          logCheckout(request.id, { status: body.error, statusCode });
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
      request.log.error({ err: error }, 'request failed');
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
    { schema: checkoutSchema, logLevel: 'warn' },
    counted(async (request, reply) => {
      const result = await checkout.checkout(request.headers['idempotency-key'], request.body);
      if (result.retryAfterSeconds) reply.header('retry-after', String(result.retryAfterSeconds));
      logCheckout(request.id, {
        orderId: result.body.orderId,
        status: result.body.status ?? result.body.error,
        statusCode: result.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime),
      });
      return reply.code(result.statusCode).send(result.body);
    }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: UUID } } } } },
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
