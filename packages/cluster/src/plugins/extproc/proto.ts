import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** packages/cluster/proto: the same three levels up from src/plugins/extproc/ and from dist/plugins/extproc/ (the package ships proto/). */
export const EXTPROC_PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));
export const EXTPROC_PROTO_FILE = 'envoy/service/ext_proc/v3/external_processor.proto';
export const EXTPROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

/**
 * keepCase so objects carry the proto field names (what ExtProc docs and servers talk about);
 * enums as numbers because HttpStatus codes outside the enum list must survive; no defaults plus
 * oneof discriminators so "field absent" and "which oneof case" are observable.
 */
export const EXTPROC_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs: [EXTPROC_PROTO_ROOT],
};

let cached: grpc.ServiceClientConstructor | undefined;

/** The generated ExternalProcessor client/service constructor; parsed once per process. */
export function extProcServiceConstructor(): grpc.ServiceClientConstructor {
  if (cached) return cached;
  const def = protoLoader.loadSync(EXTPROC_PROTO_FILE, EXTPROC_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def);
  let node: unknown = pkg;
  for (const part of EXTPROC_SERVICE.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new Error(`${EXTPROC_SERVICE} not found in ${EXTPROC_PROTO_FILE}`);
  cached = node as grpc.ServiceClientConstructor;
  return cached;
}
