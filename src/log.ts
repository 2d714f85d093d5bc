import pino from 'pino';
import pretty from 'pino-pretty';
import { ValidationError } from './errors';

export type Logger = pino.Logger;

/** How log lines are written: JSON for machines (and pipes), one short coloured line for people. */
export type LogFormat = 'json' | 'pretty';

/** The words `--log-format` takes; `auto` is pretty on a terminal and JSON otherwise. */
export const LOG_FORMAT_WORDS = ['auto', 'json', 'pretty'] as const;

/** Where a process's log lines go, in which format; one output may serve several loggers (the demo's). */
export interface LogOutput {
  readonly format: LogFormat;
  readonly stream: pino.DestinationStream;
}

/** `--log-format`'s word as a format for a destination that is (or is not) a terminal. */
export function resolveLogFormat(word: string, isTerminal: boolean): LogFormat {
  if (word === 'json' || word === 'pretty') return word;
  if (word === 'auto') return isTerminal ? 'pretty' : 'json';
  throw new ValidationError('--log-format', `"${word}" is not one of ${LOG_FORMAT_WORDS.join(', ')}`);
}

/**
 * A log output to a file descriptor (stderr by default) or to a file (appended, its directory
 * made). `word` is `--log-format`'s; colours only when the destination is a terminal.
 */
export function openLogOutput(word: string, target: { fd: number } | { file: string } = { fd: 2 }): LogOutput {
  const isTerminal = 'fd' in target && isTty(target.fd);
  const format = resolveLogFormat(word, isTerminal);
  const destination = 'fd' in target ? target.fd : target.file;
  if (format === 'json') {
    return { format, stream: pino.destination({ dest: destination, sync: true, mkdir: 'file' in target, append: true }) };
  }
  return {
    format,
    stream: pretty({
      destination,
      sync: true,
      mkdir: 'file' in target,
      colorize: isTerminal && process.env.NO_COLOR === undefined,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      // Every process's lines are devicemesh's; the component says which part.
      ignore: 'pid,hostname,name,component',
      messageFormat: '{component}: {msg}',
      // An `error` field is a message string here: on the line, not a block below it.
      errorLikeObjectKeys: ['err'],
    }),
  };
}

let defaultOutput: LogOutput | undefined;

/** stderr in the format DEVICEMESH_LOG_FORMAT names (default auto), opened once per process. */
function stderrOutput(): LogOutput {
  defaultOutput ??= openLogOutput(process.env.DEVICEMESH_LOG_FORMAT ?? 'auto');
  return defaultOutput;
}

/** One line per notable event (stderr unless `output` says otherwise); stdout stays for what a command prints. */
export function createLogger(component: string, bindings: Record<string, string> = {}, output: LogOutput = stderrOutput()): Logger {
  return pino({ name: 'devicemesh', level: process.env.DEVICEMESH_LOG_LEVEL ?? 'info', base: { component, ...bindings } }, output.stream);
}

function isTty(fd: number): boolean {
  if (fd === 1) return process.stdout.isTTY === true;
  if (fd === 2) return process.stderr.isTTY === true;
  return false;
}
