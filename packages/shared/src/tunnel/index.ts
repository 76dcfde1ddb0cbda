// The `octelium connect` tunnel protocol, shared by the cluster hub and the agent (docs/tunnel.md).
export * from './errors.js';
export * from './frames.js';
export * from './transport.js';
export * from './ws-transport.js';
export * from './ws-frame.js';
export * from './memory-transport.js';
export * from './budget.js';
export * from './stream.js';
export * from './stream-heads.js';
export * from './mux.js';
export * from './http.js';
export * from './pump.js';
export * from './cancel.js';
export * from './published-path.js';
