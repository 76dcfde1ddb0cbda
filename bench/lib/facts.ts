import type { Resource } from '@octelium-ts/shared';
import type { RequestFacts } from '../../packages/cluster/src/gateway/request-facts.js';

/** The RequestFacts of a streamable-HTTP MCP POST, as the gateway builds them, for engine-level benchmarks. */
export function mcpRequestFacts(service: Resource, user: Resource, bodyMap?: unknown): RequestFacts {
  return {
    service,
    user,
    request: {
      http: {
        method: 'POST',
        path: '/mcp',
        uri: '/mcp',
        scheme: 'https',
        host: 'my-mcp.example.com',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'abc123' },
        query: {},
        ...(bodyMap === undefined ? {} : { bodyMap }),
      },
    },
  };
}
