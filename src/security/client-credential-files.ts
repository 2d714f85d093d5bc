import * as path from 'node:path';

/**
 * Where a control plane leaves what its clients need, in its data directory: the CA bundle to
 * trust it by (`--ca-file`) and the operator credential (`--operator-token-file`). The control
 * plane writes them; the demo, tests and benchmarks on the same machine read them.
 */
export function clientCredentialFiles(dataDir: string): { caFile: string; operatorTokenFile: string } {
  return { caFile: path.join(dataDir, 'ca', 'bundle.crt'), operatorTokenFile: path.join(dataDir, 'operator.token') };
}

/** The same as the CLI's environment variables (DEVICEMESH_CA_FILE, DEVICEMESH_OPERATOR_TOKEN_FILE). */
export function clientCredentialEnv(dataDir: string): Record<'DEVICEMESH_CA_FILE' | 'DEVICEMESH_OPERATOR_TOKEN_FILE', string> {
  const { caFile, operatorTokenFile } = clientCredentialFiles(dataDir);
  return { DEVICEMESH_CA_FILE: caFile, DEVICEMESH_OPERATOR_TOKEN_FILE: operatorTokenFile };
}
