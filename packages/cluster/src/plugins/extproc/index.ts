export type { ExtProcConfig, ExtProcExchange, ExtProcHttpMessage, ExtProcResult } from './types.js';
export { ExtProcClientPool, type ExtProcClientPoolOptions } from './client-pool.js';
export { DEFAULT_MESSAGE_TIMEOUT_MS } from './exchange.js';
export { EXTPROC_LOADER_OPTIONS, EXTPROC_PROTO_FILE, EXTPROC_PROTO_ROOT, EXTPROC_SERVICE, extProcServiceConstructor } from './proto.js';
