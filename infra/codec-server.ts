import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import type { Logger } from './logger';

/**
 * The codec server the Temporal Web UI and CLI call to show encrypted payloads decrypted
 * (Temporal's "remote codec" protocol): `POST .../encode` and `POST .../decode` with
 * `{"payloads":[{"metadata":{"encoding":"<base64>"},"data":"<base64>"}]}` (proto3 JSON: every
 * bytes field base64), answered in the same shape. Only the last path segment names the
 * operation, so the endpoint may be mounted under any prefix.
 *
 * Who may call it:
 * - CORS is granted to the configured UI origins only; a browser request from any other origin is
 *   refused outright (403), so a page elsewhere cannot use an operator's browser against it.
 * - Every encode/decode needs the token: `Authorization: Bearer <token>` (the Temporal CLI's
 *   `--codec-auth`, scripts, a UI that passes a token), or the token as the first path segment
 *   (`http://127.0.0.1:8888/<token>`), because the Temporal UI without an identity provider
 *   cannot send a header. Anything else is 401.
 *
 * node:http rather than a framework: two routes and one fixed CORS policy, which a framework
 * would not make shorter, and one dependency less on a process that holds the keys.
 */

export interface CodecServerOptions {
  codec: PayloadCodec;
  host: string;
  port: number;
  /** Browser origins granted CORS, e.g. http://localhost:8233. */
  origins: string[];
  token: string;
  log: Logger;
  /** Request bodies above this are refused with 413. Default 16 MiB (a UI asks for one event's payloads at a time). */
  maxBodyBytes?: number;
}

export interface RunningCodecServer {
  /** http://host:port of the listening socket. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'expected base64');
const PayloadsBody = z.object({
  payloads: z.array(
    z.object({
      metadata: z.record(z.string(), base64).optional().nullable(),
      data: base64.optional().nullable(),
    }),
  ),
});

const ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization';

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();
/** Compares digests, so neither the token's length nor its prefix leaks through timing. */
function sameToken(given: string | undefined, expected: Buffer): boolean {
  return given !== undefined && crypto.timingSafeEqual(digest(given), expected);
}

function toPayload(p: z.infer<typeof PayloadsBody>['payloads'][number]): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): { metadata: Record<string, string>; data: string } {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v ?? new Uint8Array()).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

export async function startCodecServer(o: CodecServerOptions): Promise<RunningCodecServer> {
  const expected = digest(o.token);
  const origins = new Set(o.origins.map((x) => x.replace(/\/$/, '')));
  const maxBody = o.maxBodyBytes ?? 16 * 1024 * 1024;

  const server = http.createServer((req, res) => {
    const started = Date.now();
    const segments = new URL(req.url ?? '/', 'http://codec').pathname.split('/').filter((s) => s !== '');
    const operation = segments[segments.length - 1];
    const pathToken = segments.length >= 2 ? segments[0] : undefined;
    const namespace = req.headers['x-namespace'];
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'Cache-Control': 'no-store', ...headers });
      res.end(text);
      o.log.debug({ method: req.method, operation, status, namespace, ms: Date.now() - started }, 'codec request');
    };

    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin)) {
        o.log.warn({ origin, method: req.method }, 'codec server: refused a browser request from an origin that is not the configured Temporal UI');
        return send(403, 'origin not allowed\n');
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      // The UI's "include cross-origin credentials" setting needs this; the token is still required.
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    if (req.method === 'OPTIONS') {
      return send(204, '', {
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
      });
    }

    const auth = req.headers.authorization;
    const bearer = auth?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    if (!sameToken(bearer, expected) && !sameToken(pathToken, expected)) {
      return send(401, 'a valid token is required: Authorization: Bearer <CODEC_SERVER_TOKEN>, or the endpoint http://host:port/<CODEC_SERVER_TOKEN>\n', { 'WWW-Authenticate': 'Bearer' });
    }
    if (operation !== 'encode' && operation !== 'decode') return send(404, 'not found: POST .../encode or .../decode\n');
    if (req.method !== 'POST') return send(405, 'method not allowed: POST\n', { Allow: 'POST, OPTIONS' });

    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) return send(413, `request body above ${maxBody} bytes\n`);
      let body: z.infer<typeof PayloadsBody>;
      try {
        const parsed = PayloadsBody.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        if (!parsed.success) return send(400, `expected {"payloads":[{"metadata":{...},"data":"<base64>"}]}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`);
        body = parsed.data;
      } catch {
        return send(400, 'expected a JSON body\n');
      }
      const payloads = body.payloads.map(toPayload);
      const run = operation === 'encode' ? o.codec.encode(payloads) : o.codec.decode(payloads);
      run.then(
        (out) => send(200, { payloads: out.map(toJson) }),
        (err: unknown) => {
          o.log.warn({ err, operation, namespace }, 'codec server: payloads could not be converted');
          send(422, `${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    });
    req.on('error', () => res.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${o.port} on ${o.host} is already in use (CODEC_SERVER_PORT / --port)`) : err),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
