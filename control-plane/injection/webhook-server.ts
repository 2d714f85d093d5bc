import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { errorMessage, UnavailableError, ValidationError } from '../../src/errors';
import type { Logger } from '../../src/log';
import { formatHostPort, parseHostPort } from '../../src/util/address';
import { reviewAdmission } from './injection-webhook';
import type { InjectionConfig } from './sidecar-patch';

export interface WebhookServerOptions {
  /** host:port, port 0 allowed. */
  listen: string;
  /** PEM certificate chain and private key of the webhook's serving certificate. */
  cert: Buffer;
  key: Buffer;
  injection: InjectionConfig;
  log: Logger;
}

export interface RunningWebhookServer {
  address: string;
  close(): Promise<void>;
}

export const WEBHOOK_PATH = '/inject';
/** Pod specs are a few KiB; the API server's own request limit is 3 MiB. */
const MAX_BODY = 3 * 1024 * 1024;

/** Serves the injection webhook over HTTPS (the API server only calls webhooks over TLS): POST /inject. */
export async function startWebhookServer(options: WebhookServerOptions): Promise<RunningWebhookServer> {
  const { log } = options;
  const listen = (() => {
    try {
      return parseHostPort(options.listen);
    } catch (err) {
      throw new ValidationError('--webhook-listen', errorMessage(err));
    }
  })();
  const { cert, key } = options;
  let server: https.Server;
  try {
    server = https.createServer({ cert, key });
  } catch (err) {
    throw new ValidationError('--webhook-cert', `not a usable certificate and key: ${errorMessage(err)}`);
  }
  server.on('request', (req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (new URL(req.url ?? '/', 'https://webhook').pathname !== WEBHOOK_PATH) return send(404, { error: `not found; the webhook is POST ${WEBHOOK_PATH}` });
    if (req.method !== 'POST') return send(405, { error: `POST ${WEBHOOK_PATH} only` });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        send(413, { error: `request body above ${MAX_BODY} bytes` });
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const reply = reviewAdmission(Buffer.concat(chunks).toString('utf8'), options.injection);
      const level = reply.outcome === 'injected' ? 'info' : reply.outcome === 'skipped' ? 'debug' : 'warn';
      log[level]({ uid: reply.review.response.uid, outcome: reply.outcome, detail: reply.detail }, 'admission review');
      send(reply.httpStatus, reply.review);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new UnavailableError(`cannot serve the webhook on ${options.listen}: ${err.message}`, { cause: err })));
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = formatHostPort({ host: listen.host, port: (server.address() as AddressInfo).port });
  log.info({ webhook: `https://${address}${WEBHOOK_PATH}` }, 'injection webhook serving');
  return {
    address,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
