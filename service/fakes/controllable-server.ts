import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo, Socket } from 'node:net';

/** How a fake dependency behaves; changed at run time with `PUT /__control`. */
export interface FaultSettings {
  /** Added to every answer. */
  latencyMs: number;
  /** Share of requests (0..1) answered with a 5xx (or, for `reset`, a dropped connection). */
  errorRate: number;
  /**
   * - `ok`: behave
   * - `hang`: accept the request, never answer
   * - `error`: answer 503 to everything
   * - `reset`: destroy the connection without an answer
   * - `decline` (payment only): answer 402
   */
  mode: 'ok' | 'hang' | 'error' | 'reset' | 'decline';
}

export const HEALTHY: FaultSettings = { latencyMs: 0, errorRate: 0, mode: 'ok' };

export type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

/** An HTTP fake whose fault settings tests and operators can change while it runs. */
export class ControllableServer {
  settings: FaultSettings = { ...HEALTHY };
  /** Requests received on the service's routes (not `/__control`), whatever the fault. */
  requestCount = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly handler: Handler) {
    this.server = createServer((req, res) => this.route(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** Starts listening on 127.0.0.1 (port 0: any free port); returns the base URL. */
  async listen(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Changes the fault settings (partial update). */
  set(settings: Partial<FaultSettings>): void {
    this.settings = { ...this.settings, ...settings };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      if (req.url === '/__control') {
        if (req.method === 'PUT') {
          try {
            this.set(JSON.parse(body) as Partial<FaultSettings>);
          } catch {
            return json(res, 400, { error: 'body must be JSON fault settings' });
          }
        }
        return json(res, 200, this.settings);
      }
      this.requestCount++;
      this.misbehave(req, body, res);
    });
  }

  private misbehave(req: IncomingMessage, body: string, res: ServerResponse): void {
    const { mode, errorRate, latencyMs } = this.settings;
    if (mode === 'hang') return; // the socket stays open until the client gives up
    const act = () => {
      if (mode === 'reset') return req.socket.destroy();
      if (mode === 'error') return json(res, 503, { error: 'injected outage' });
      if (errorRate > 0 && Math.random() < errorRate) return json(res, 500, { error: 'injected failure' });
      this.handler(req, body, res);
    };
    if (latencyMs > 0) setTimeout(act, latencyMs);
    else act();
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
