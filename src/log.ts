import pino from 'pino';

export type Logger = pino.Logger;

/** One JSON line per notable event on stderr; stdout stays for what a command prints. */
export function createLogger(component: string, bindings: Record<string, string> = {}): Logger {
  return pino(
    { name: 'devicemesh', level: process.env.DEVICEMESH_LOG_LEVEL ?? 'info', base: { component, ...bindings } },
    pino.destination(2),
  );
}
