import type { Resource } from '@octelium-ts/shared';

/**
 * What policies (CEL `ctx`) and plugins (Lua `ctx`) see of one gateway request — design.md §5.
 * Plain JSON-like data; the policy engine converts it for CEL, the Lua runtime passes it as a table.
 */
export interface RequestFacts {
  user?: Resource;
  session?: Resource;
  service: Resource;
  namespace?: Resource;
  request: {
    http: {
      method: string;
      /** Path as the Service sees it (after the no-DNS `/svc/<name>` prefix is removed), without query. */
      path: string;
      /** Path plus query string. */
      uri: string;
      scheme: string;
      host: string;
      /** Lower-case keys; repeated headers joined with ", ". */
      headers: Record<string, string>;
      query: Record<string, string>;
      /** Parsed JSON body when the Service buffers JSON bodies. */
      bodyMap?: unknown;
      /** Raw body text when buffered. */
      body?: string;
    };
  };
}
