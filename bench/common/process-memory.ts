import * as fs from 'node:fs';

/** A live process's resident memory from /proc/<pid>/status, MB: all of it, and its anonymous (heap, stacks) and file-backed (code, mapped files) parts. */
export interface ResidentMemory {
  rssMB: number;
  anonMB: number;
  fileMB: number;
}

const round1 = (kB: number): number => Math.round(kB / 102.4) / 10;

/** The field `name` of /proc/<pid>/status in kB; a missing field is an error, never a silent zero. */
function statusField(status: string, name: string, pid: number): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no ${name} line`);
  return Number(match[1]);
}

export function residentMemory(pid: number): ResidentMemory {
  return parseResidentMemory(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), pid);
}

/** The resident memory in the text of /proc/<pid>/status. */
export function parseResidentMemory(status: string, pid: number): ResidentMemory {
  return {
    rssMB: round1(statusField(status, 'VmRSS', pid)),
    anonMB: round1(statusField(status, 'RssAnon', pid)),
    fileMB: round1(statusField(status, 'RssFile', pid)),
  };
}
