import { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

/**
 * Tracks each client connection and the requests in progress on it, so that shutdown
 * closes at once every connection with nothing in flight. Node's `server.close()` closes
 * only kept-alive connections that finished a response: a connection that has sent
 * nothing yet, or part of its headers, kept the process draining for the whole drain
 * timeout (26 s observed).
 */
export class ConnectionTracker {
  /** Per open connection, the requests received on it whose response has not finished. */
  private readonly requests = new Map<Socket, Set<ServerResponse>>();
  private closing = false;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      if (this.closing) return void socket.destroy();
      this.requests.set(socket, new Set());
      socket.once('close', () => this.requests.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const inProgress = this.requests.get(req.socket);
      if (!inProgress) return;
      inProgress.add(res);
      if (this.closing) res.setHeader('connection', 'close');
      res.once('close', () => inProgress.delete(res));
    });
  }

  /** Open client connections. */
  get open(): number {
    return this.requests.size;
  }

  /**
   * For shutdown, once the listener is closing: closes every connection with no request
   * in progress, and has each request in progress answered with `Connection: close`
   * (node then closes its connection once the response is written).
   */
  closeIdle(): void {
    this.closing = true;
    for (const [socket, inProgress] of this.requests) {
      if (inProgress.size === 0) {
        socket.destroy();
        continue;
      }
      for (const res of inProgress) if (!res.headersSent) res.setHeader('connection', 'close');
    }
  }

  /** Closes every connection, requests in progress or not (the drain budget is spent). */
  closeAll(): void {
    this.closing = true;
    for (const socket of this.requests.keys()) socket.destroy();
  }
}
