import { ConfigError, type AppConfig, type ConfigProblem } from '../../infra/config';
import { startCodecServer } from '../../infra/codec-server';
import { AesGcmPayloadCodec } from '../../infra/payload-codec';
import { onShutdownSignal, processLogger } from '../../infra/stack';
import { isLoopbackAddress } from '../../infra/temporal-security';

/**
 * `trader codec-server [--port N] [--host ADDR]`: the HTTP codec server through which the
 * Temporal Web UI and CLI show the payloads that TEMPORAL_ENCRYPTION_KEYS encrypt (see
 * infra/codec-server.ts for the protocol, CORS and the token). Runs until Ctrl-C.
 */

export async function runCodecServer(cfg: AppConfig, opts: { port?: number; host?: string } = {}): Promise<void> {
  const problems: ConfigProblem[] = [];
  if (!cfg.temporal.encryptionKeys) problems.push({ variable: 'TEMPORAL_ENCRYPTION_KEYS', value: undefined, expected: 'required by the codec server: the keys the workers encrypt payloads with' });
  if (!cfg.codecServer.token) problems.push({ variable: 'CODEC_SERVER_TOKEN', value: undefined, expected: 'required by the codec server: the token callers must present (openssl rand -hex 24)' });
  if (problems.length > 0) throw new ConfigError(problems);
  const keys = cfg.temporal.encryptionKeys!;
  const log = processLogger(cfg).child({ component: 'codec-server' });
  const host = opts.host ?? cfg.codecServer.host;
  const stopSignal = onShutdownSignal(log);
  const server = await startCodecServer({
    codec: new AesGcmPayloadCodec(keys),
    host,
    port: opts.port ?? cfg.codecServer.port,
    origins: cfg.codecServer.origins,
    token: cfg.codecServer.token!,
    log,
  });
  if (!isLoopbackAddress(`${host}:0`)) log.warn({ host }, 'the codec server listens beyond this machine: serve it through HTTPS (a reverse proxy) so the token and the payloads are not sent in clear text');
  console.log(
    [
      `codec server on ${server.url} (keys ${keys.map((k) => k.id).join(', ')}; new payloads use ${keys[keys.length - 1].id})`,
      `  Temporal UI codec endpoint: ${server.url}/<CODEC_SERVER_TOKEN>  (TEMPORAL_UI_CODEC_ENDPOINT, the dev server's --ui-codec-endpoint, or the UI's Codec Server setting)`,
      `  Temporal CLI: temporal workflow show -w <workflow id> --codec-endpoint ${server.url} --codec-auth "Bearer $CODEC_SERVER_TOKEN"`,
      `  CORS granted to ${cfg.codecServer.origins.join(', ')} only (CODEC_SERVER_ORIGINS)`,
      '  Ctrl-C stops it.',
    ].join('\n'),
  );
  await stopSignal;
  await server.close();
}
