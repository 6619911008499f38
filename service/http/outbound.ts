import { Agent as HttpAgent, IncomingMessage, OutgoingHttpHeaders, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** A response, its body read whole. */
export interface OutboundResponse {
  readonly status: number;
  /** 2xx. */
  readonly ok: boolean;
  readonly body: string;
}

/** A request failed before a whole response arrived; `aborted` when its signal or timeout ended it. */
export class OutboundRequestError extends Error {
  constructor(
    message: string,
    readonly aborted: boolean,
    /** The response's status, when headers arrived before the failure. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OutboundRequestError';
  }
}

export interface OutboundRequest {
  readonly method: 'GET' | 'POST';
  /** Path and query, appended to the client's base URL. */
  readonly path: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string;
  /** Ends the request, the response body included, when it fires. */
  readonly signal?: AbortSignal;
  /** Ends the request, the response body included, after this long. */
  readonly timeoutMs?: number;
}

/**
 * HTTP requests to one dependency over node:http(s) with kept-alive connections.
 *
 * Not `fetch`: under load the checkout's two `fetch` calls (payment, recommendations)
 * were the largest CPU cost of a checkout in the service's profile (WHATWG streams,
 * AbortSignal plumbing, header objects per call), and node:http does the same work for
 * far less (bench/checkout.ts, "Benchmark" in docs/checkout-service.md). Differences that
 * matter to callers: redirects are not followed (a dependency that redirects is
 * misconfigured), and the body is read whole, as a string, under the same signal and
 * timeout as the request.
 */
export class OutboundHttpClient {
  private readonly base: URL;
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;

  /**
   * @param maxSockets - connections kept to the dependency at most; requests beyond wait for one
   */
  constructor(baseUrl: string, maxSockets = Infinity) {
    this.base = new URL(baseUrl);
    const https = this.base.protocol === 'https:';
    this.agent = https
      ? new HttpsAgent({ keepAlive: true, maxSockets })
      : new HttpAgent({ keepAlive: true, maxSockets });
    this.send = https ? httpsRequest : httpRequest;
  }

  request(options: OutboundRequest): Promise<OutboundResponse> {
    return new Promise((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(
          new OutboundRequestError('request aborted before it was sent', true, undefined, {
            cause: signal.reason,
          }),
        );
        return;
      }
      let settled = false;
      let status: number | undefined;
      let timer: NodeJS.Timeout | undefined;
      const finish = (error: OutboundRequestError | undefined, response?: OutboundResponse) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) {
          req.destroy();
          reject(error);
        } else resolve(response!);
      };
      const onAbort = () =>
        finish(new OutboundRequestError('request aborted', true, status, { cause: signal?.reason }));
      const req = this.send(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          path: this.base.pathname.replace(/\/$/, '') + options.path,
          method: options.method,
          headers: options.headers,
          agent: this.agent,
        },
        (res: IncomingMessage) => {
          status = res.statusCode ?? 0;
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () =>
            finish(undefined, { status: status!, ok: status! >= 200 && status! < 300, body }),
          );
          res.on('error', (err) =>
            finish(
              new OutboundRequestError(`response failed: ${err.message}`, false, status, { cause: err }),
            ),
          );
          res.on('aborted', () => finish(new OutboundRequestError('response cut short', false, status)));
        },
      );
      req.on('error', (err) => finish(new OutboundRequestError(err.message, false, status, { cause: err })));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            finish(
              new OutboundRequestError(`no whole response within ${options.timeoutMs} ms`, true, status),
            ),
          options.timeoutMs,
        );
      }
      req.end(options.body);
    });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}
