import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import type { ConfigProblem } from './config';
import { keyMaterialTexts, parseEncryptionKeys, type EncryptionKey } from './payload-codec';

/**
 * The configuration of how this process talks to Temporal securely: TLS and mTLS, a Temporal
 * Cloud API key, payload encryption keys, and the codec server that lets the Web UI decrypt.
 * Part of the one config loader (infra/config.ts spreads TEMPORAL_SECURITY_ENV into its schema
 * and adds readTemporalSecurity's problems to its own), kept here because it reads files and
 * certificates, which the rest of the configuration never does.
 */

export const TEMPORAL_SECRET_VARS = ['TEMPORAL_API_KEY', 'TEMPORAL_ENCRYPTION_KEYS', 'TEMPORAL_TLS_KEY', 'CODEC_SERVER_TOKEN'] as const;

export const DEFAULT_CODEC_SERVER_PORT = 8888;
const MIN_TOKEN_LENGTH = 16;

/** The SDK's TLSConfig, resolved: file contents, not paths. */
export interface TemporalTls {
  serverRootCACertificate?: Buffer;
  clientCertPair?: { crt: Buffer; key: Buffer };
  serverNameOverride?: string;
}

export interface TemporalSecurity {
  /** Undefined: plain gRPC (the embedded dev server, or a cluster on a private network). */
  tls?: TemporalTls;
  apiKey?: string;
  /** Undefined: payloads are not encrypted. Oldest first; the last encrypts. */
  encryptionKeys?: EncryptionKey[];
  /** The embedded dev server's `--ui-codec-endpoint`. */
  uiCodecEndpoint?: string;
}

export interface CodecServerSettings {
  host: string;
  port: number;
  /** Browser origins (the Temporal UI's) granted CORS. */
  origins: string[];
  token?: string;
}

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

const text = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const optionalBool = text.superRefine((v, ctx) => {
  if (v !== undefined && !TRUE.includes(v.toLowerCase()) && !FALSE.includes(v.toLowerCase())) ctx.addIssue({ code: 'custom', message: 'expected true or false' });
});

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `scheme://host[:port]`, nothing after: what a browser sends as Origin. */
function originProblem(o: string): string | undefined {
  try {
    const u = new URL(o);
    if (!['http:', 'https:'].includes(u.protocol) || u.origin !== o.replace(/\/$/, '')) return `'${o}' is not an origin (scheme://host[:port], no path)`;
  } catch {
    return `'${o}' is not an origin (scheme://host[:port], no path)`;
  }
  return undefined;
}

/** The per-variable rules, spread into the config schema. */
export const TEMPORAL_SECURITY_ENV = {
  TEMPORAL_TLS: optionalBool,
  TEMPORAL_TLS_CERT: text,
  TEMPORAL_TLS_KEY: text,
  TEMPORAL_TLS_CA: text,
  TEMPORAL_TLS_SERVER_NAME: text.superRefine((v, ctx) => {
    if (v !== undefined && !HOSTNAME_RE.test(v)) ctx.addIssue({ code: 'custom', message: 'expected the host name in the server certificate, e.g. temporal.example.com' });
  }),
  TEMPORAL_API_KEY: text.superRefine((v, ctx) => {
    if (v !== undefined && /\s/.test(v)) ctx.addIssue({ code: 'custom', message: 'expected a Temporal Cloud API key (one word, no spaces)' });
  }),
  TEMPORAL_ENCRYPTION: optionalBool,
  TEMPORAL_ENCRYPTION_KEYS: text.superRefine((v, ctx) => {
    if (v === undefined) return;
    try {
      parseEncryptionKeys(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `expected id:BASE64[,id:BASE64...] with 32-byte keys, the last one newest (${(err as Error).message})` });
    }
  }),
  TEMPORAL_UI_CODEC_ENDPOINT: text.superRefine((v, ctx) => {
    if (v === undefined) return;
    try {
      if (!['http:', 'https:'].includes(new URL(v).protocol)) throw new Error();
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected the codec server URL, e.g. http://127.0.0.1:8888' });
    }
  }),
  CODEC_SERVER_HOST: text.superRefine((v, ctx) => {
    if (v !== undefined && !HOSTNAME_RE.test(v) && !/^[0-9a-fA-F:.]+$/.test(v)) ctx.addIssue({ code: 'custom', message: 'expected an address to listen on, e.g. 127.0.0.1 (the default) or 0.0.0.0' });
  }),
  CODEC_SERVER_PORT: text.superRefine((v, ctx) => {
    if (v !== undefined && !(/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535)) ctx.addIssue({ code: 'custom', message: 'expected an integer from 1 to 65535' });
  }),
  CODEC_SERVER_ORIGINS: text.superRefine((v, ctx) => {
    if (v === undefined) return;
    const bad = v.split(',').map((s) => s.trim()).filter((s) => s !== '').map(originProblem).filter((p) => p !== undefined);
    if (bad.length > 0) ctx.addIssue({ code: 'custom', message: `expected the Temporal UI's origins separated by commas, e.g. http://localhost:8233 (${bad.join('; ')})` });
  }),
  CODEC_SERVER_TOKEN: text.superRefine((v, ctx) => {
    if (v !== undefined && (v.length < MIN_TOKEN_LENGTH || !/^[A-Za-z0-9._~+-]+$/.test(v))) {
      ctx.addIssue({ code: 'custom', message: `expected at least ${MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 . _ ~ + - (openssl rand -hex 24)` });
    }
  }),
};

const isTrue = (v: string | undefined) => v !== undefined && TRUE.includes(v.toLowerCase());
const isFalse = (v: string | undefined) => v !== undefined && FALSE.includes(v.toLowerCase());

/** 127.0.0.0/8, ::1 or localhost: a server on this machine. */
export function isLoopbackAddress(hostPort: string): boolean {
  const host = hostPort.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function looksLikePem(v: string): boolean {
  return v.includes('-----BEGIN ');
}

/** A PEM given inline (as docker and CI secrets often are) may carry `\n` escapes instead of newlines. */
function inlinePem(v: string): Buffer {
  return Buffer.from(v.includes('\n') ? v : v.replace(/\\n/g, '\n'), 'utf8');
}

/**
 * Reads the TLS, API key and encryption settings from the raw environment, with every problem
 * (a certificate without its key, an unreadable file, a key that does not match its certificate,
 * an API key with TLS off, a remote cluster without payload encryption) as a ConfigProblem.
 * Values that the schema already refused are skipped here, so each problem is reported once.
 */
export function readTemporalSecurity(raw: (k: string) => string | undefined, address: string | undefined): { value: TemporalSecurity; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const problem = (variable: string, expected: string, value = raw(variable)) => problems.push({ variable, value, expected });
  const tlsVars = ['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CA', 'TEMPORAL_TLS_SERVER_NAME'] as const;
  const tlsFlag = raw('TEMPORAL_TLS');
  const apiKey = raw('TEMPORAL_API_KEY');

  if (!address) {
    for (const v of [...tlsVars, 'TEMPORAL_API_KEY'] as const) {
      if (raw(v)) problem(v, 'applies to a cluster: set TEMPORAL_ADDRESS too (the embedded dev server speaks plain gRPC on 127.0.0.1 only)');
    }
    if (isTrue(tlsFlag)) problem('TEMPORAL_TLS', 'applies to a cluster: set TEMPORAL_ADDRESS too (the embedded dev server speaks plain gRPC on 127.0.0.1 only)');
  }
  if (isFalse(tlsFlag)) {
    if (apiKey) problem('TEMPORAL_API_KEY', 'needs TLS, but TEMPORAL_TLS=false: the key would cross the network in clear text (unset TEMPORAL_TLS; Temporal Cloud always uses TLS)');
    for (const v of tlsVars) if (raw(v)) problem(v, 'is a TLS setting, but TEMPORAL_TLS=false: unset one of them');
  }

  let clientCrt: Buffer | undefined;
  let clientKey: Buffer | undefined;
  let ca: Buffer | undefined;
  const certRaw = raw('TEMPORAL_TLS_CERT');
  const keyRaw = raw('TEMPORAL_TLS_KEY');
  if (certRaw && !keyRaw) problem('TEMPORAL_TLS_KEY', 'required with TEMPORAL_TLS_CERT: the private key of the client certificate (a path or the PEM itself)', undefined);
  if (keyRaw && !certRaw) problem('TEMPORAL_TLS_CERT', 'required with TEMPORAL_TLS_KEY: the client certificate (a path or the PEM itself)', undefined);
  const load = (variable: string, value: string): Buffer | undefined => {
    if (looksLikePem(value)) return inlinePem(value);
    try {
      return fs.readFileSync(value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
      problem(variable, `cannot read the file (${why}); give a readable path or the PEM text itself`);
      return undefined;
    }
  };
  if (certRaw) {
    const pem = load('TEMPORAL_TLS_CERT', certRaw);
    if (pem) {
      const cert = certificate(pem);
      if (!cert) problem('TEMPORAL_TLS_CERT', 'not a PEM certificate (-----BEGIN CERTIFICATE-----)');
      else if (Date.parse(cert.validTo) < Date.now()) problem('TEMPORAL_TLS_CERT', `the client certificate expired on ${cert.validTo}`);
      else clientCrt = pem;
      if (cert && keyRaw) {
        const keyPem = load('TEMPORAL_TLS_KEY', keyRaw);
        const key = keyPem ? privateKey(keyPem) : undefined;
        if (keyPem && !key) problem('TEMPORAL_TLS_KEY', 'not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----; a passphrase-protected key is not supported)');
        else if (key && !cert.checkPrivateKey(key)) problem('TEMPORAL_TLS_KEY', 'does not belong to the certificate in TEMPORAL_TLS_CERT');
        else if (key) clientKey = keyPem;
      }
    }
  } else if (keyRaw) {
    load('TEMPORAL_TLS_KEY', keyRaw);
  }
  const caRaw = raw('TEMPORAL_TLS_CA');
  if (caRaw) {
    const pem = load('TEMPORAL_TLS_CA', caRaw);
    if (pem && !certificate(pem)) problem('TEMPORAL_TLS_CA', 'not a PEM CA certificate (-----BEGIN CERTIFICATE-----)');
    else ca = pem;
  }

  let encryptionKeys: EncryptionKey[] | undefined;
  const keysRaw = raw('TEMPORAL_ENCRYPTION_KEYS');
  const encryptionFlag = raw('TEMPORAL_ENCRYPTION');
  if (keysRaw) {
    try {
      encryptionKeys = parseEncryptionKeys(keysRaw);
    } catch {
      // reported by the schema
    }
  }
  if (isFalse(encryptionFlag) && keysRaw) problem('TEMPORAL_ENCRYPTION', 'is false, but TEMPORAL_ENCRYPTION_KEYS is set: unset one of them');
  if (!keysRaw && isTrue(encryptionFlag)) problem('TEMPORAL_ENCRYPTION_KEYS', 'required when TEMPORAL_ENCRYPTION=true: id:BASE64 with a 32-byte key, e.g. k1:<output of openssl rand -base64 32>', undefined);
  if (!keysRaw && address && !isLoopbackAddress(address) && !isFalse(encryptionFlag)) {
    problem(
      'TEMPORAL_ENCRYPTION_KEYS',
      `required with a remote TEMPORAL_ADDRESS (${address}): without it the cluster stores positions, prices and order ids in clear text. Set id:BASE64 (e.g. k1:<output of openssl rand -base64 32>), or TEMPORAL_ENCRYPTION=false to accept clear text`,
      undefined,
    );
  }

  const tlsWanted = address !== undefined && !isFalse(tlsFlag) && (isTrue(tlsFlag) || apiKey !== undefined || tlsVars.some((v) => raw(v) !== undefined));
  const serverName = raw('TEMPORAL_TLS_SERVER_NAME');
  const tls: TemporalTls | undefined = tlsWanted
    ? {
        ...(ca ? { serverRootCACertificate: ca } : {}),
        ...(clientCrt && clientKey ? { clientCertPair: { crt: clientCrt, key: clientKey } } : {}),
        ...(serverName ? { serverNameOverride: serverName } : {}),
      }
    : undefined;
  return { value: { tls, apiKey: address ? apiKey : undefined, encryptionKeys, uiCodecEndpoint: raw('TEMPORAL_UI_CODEC_ENDPOINT') }, problems };
}

export function readCodecServerSettings(raw: (k: string) => string | undefined, uiPort: number): CodecServerSettings {
  const origins = raw('CODEC_SERVER_ORIGINS');
  return {
    host: raw('CODEC_SERVER_HOST') ?? '127.0.0.1',
    port: raw('CODEC_SERVER_PORT') ? Number(raw('CODEC_SERVER_PORT')) : DEFAULT_CODEC_SERVER_PORT,
    // The UI of the embedded dev server, under both names a browser may use for it.
    origins: origins ? origins.split(',').map((s) => s.trim().replace(/\/$/, '')).filter((s) => s !== '') : [`http://localhost:${uiPort}`, `http://127.0.0.1:${uiPort}`],
    token: raw('CODEC_SERVER_TOKEN'),
  };
}

/** Every secret value of these settings, for the logger's masking. */
export function temporalSecrets(s: TemporalSecurity, codec: CodecServerSettings): string[] {
  const out = [s.apiKey, codec.token];
  if (s.encryptionKeys) out.push(...keyMaterialTexts(s.encryptionKeys));
  const key = s.tls?.clientCertPair?.key.toString('utf8');
  if (key) out.push(key, ...pemBodyLines(key));
  return out.filter((v): v is string => !!v);
}

/** The base64 lines of a PEM: a log line may carry a fragment of it rather than the whole. */
function pemBodyLines(pem: string): string[] {
  return pem.split('\n').map((l) => l.trim()).filter((l) => l.length >= 16 && !l.startsWith('-----'));
}

function certificate(pem: Buffer): crypto.X509Certificate | undefined {
  try {
    return new crypto.X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function privateKey(pem: Buffer): crypto.KeyObject | undefined {
  try {
    return crypto.createPrivateKey(pem);
  } catch {
    return undefined;
  }
}

/** The TLS settings as an operator may see them: subjects and names, never key material. */
export function describeTemporalSecurity(s: TemporalSecurity): Record<string, unknown> {
  const subject = (pem?: Buffer) => (pem ? (certificate(pem)?.subject.replace(/\n/g, ', ') ?? '(set)') : undefined);
  return {
    tls: s.tls
      ? { clientCertificate: subject(s.tls.clientCertPair?.crt), clientKey: s.tls.clientCertPair ? '(set)' : undefined, ca: subject(s.tls.serverRootCACertificate) ?? '(system roots)', serverName: s.tls.serverNameOverride }
      : false,
    apiKey: s.apiKey ? '(set)' : undefined,
    encryption: s.encryptionKeys ? { keyIds: s.encryptionKeys.map((k) => k.id), encryptsWith: s.encryptionKeys[s.encryptionKeys.length - 1].id } : false,
    uiCodecEndpoint: s.uiCodecEndpoint ? s.uiCodecEndpoint.replace(/\/\/([^/]+)\/.+$/, '//$1/***') : undefined,
  };
}
