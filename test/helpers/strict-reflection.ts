import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './processes';

/** Debian's python, whose grpcio the independent reflection client runs on. */
export const PYTHON = '/usr/bin/python3';
export const STRICT_CLIENT = path.join(REPO_ROOT, 'test', 'tools', 'strict_reflection_client.py');
const DEBIAN_REFLECTION_PROTO = '/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto';

/** Why the strict reflection client cannot run here, or undefined when it can. */
export function strictClientMissing(): string | undefined {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} is not installed`;
  const r = spawnSync(PYTHON, ['-c', 'import grpc, grpc_tools.protoc, google.protobuf'], { encoding: 'utf8' });
  if (r.status !== 0) return `${PYTHON} cannot import grpc, grpc_tools and google.protobuf (install python3-grpcio, python3-grpc-tools)`;
  if (!fs.existsSync(DEBIAN_REFLECTION_PROTO)) return `${DEBIAN_REFLECTION_PROTO} is missing (install grpc-proto)`;
  return undefined;
}
