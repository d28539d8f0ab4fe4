import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * The HTTP side the local stand-ins (exchange-standin.ts, bot-api-standin.ts) share: a server on
 * a free port of 127.0.0.1, JSON replies, and a close that does not wait for the connections a
 * client keeps alive or a stand-in left hanging on purpose. What a stand-in answers, and what it
 * logs of each request, stays in the stand-in.
 */
export interface LocalHttpServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Cuts every open connection, then stops listening. */
  close(): Promise<void>;
}

export async function startLocalHttpServer(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<LocalHttpServer> {
  const server = http.createServer(handle);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers `status` with a JSON body: `body` serialised, or sent as it is when it is already text (a raw body a fault asks for). */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

/** The request's body as UTF-8 text ('' when there is none). */
export async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
