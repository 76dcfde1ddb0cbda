import { parseJsonText } from '@octelium-ts/shared';
import type { BufferedResponse, GatewayContext, ResponseTransform } from '../gateway/context.js';
import { idKey } from './jsonrpc.js';
import { rewriteMessages } from './list-filter.js';
import type { Era } from './protocol.js';
import type { ListMethod } from './sessions.js';
import type { McpSettings } from './settings.js';
import { SseEventSplitter, withData } from './sse.js';
import { corsOf, type McpStageDeps } from './stage-deps.js';
import type { Visibility } from './visibility.js';

export interface RequestInfo {
  service: string;
  owner: string;
  sid?: string;
  era: Era;
  method: string;
  filtering: boolean;
  lists: Map<string, ListMethod>;
  visibility: () => Visibility;
}

/**
 * The streaming side of one MCP request: CORS and session bookkeeping on the response head, list rewriting per
 * SSE event (and in buffered JSON list responses), keep-alives on idle SSE.
 */
export function registerTransforms(d: McpStageDeps, ctx: GatewayContext, settings: McpSettings, r: RequestInfo): void {
  const cors = corsOf(ctx);
  /** Which tracked list request a response id answers: this request's own, or one of the session's (resumed streams). */
  const methodOf = (id: unknown): ListMethod | undefined => {
    const k = idKey(id);
    if (!k) return undefined;
    const own = r.lists.get(k);
    const fromSession = r.sid ? d.sessions.takeList(r.service, r.sid, k) : undefined;
    return own ?? fromSession;
  };
  const transform: ResponseTransform = {
    head(status, headers) {
      for (const [k, v] of Object.entries(cors)) {
        headers[k] = k === 'vary' && headers.vary ? `${String(headers.vary)}, ${v}` : v;
      }
      // An SSE body we may rewrite or add keep-alives to no longer has the upstream's length.
      if (transform.sse && String(headers['content-type'] ?? '').startsWith('text/event-stream')) delete headers['content-length'];
      const issued = headers['mcp-session-id'];
      if (typeof issued === 'string' && status >= 200 && status < 300 && !r.era.modern) d.sessions.bind(r.service, issued, r.owner);
      if (r.sid && (status === 404 || (r.method === 'DELETE' && status >= 200 && status < 300))) d.sessions.forget(r.service, r.sid);
    },
  };
  const rewrite = r.filtering
    ? (data: string, raw?: string): string | undefined => {
      if (!data.includes('"result"')) return undefined;
      let msg: unknown;
      try {
        msg = parseJsonText(data);
      } catch {
        return undefined;
      }
      const out = rewriteMessages(msg, methodOf, r.visibility(), r.era.modern);
      if (out === undefined) return undefined;
      return raw === undefined ? JSON.stringify(out) : withData(raw, JSON.stringify(out));
    }
    : undefined;
  if (rewrite || settings.keepAliveMs > 0) {
    transform.sse = () => new SseEventSplitter(rewrite && ((ev) => (ev.data ? rewrite(ev.data, ev.raw) : undefined)), settings.keepAliveMs);
  }
  (ctx.responseTransforms ??= []).push(transform);
  // JSON list responses are small: buffer them (only them) so the list can be rewritten and re-measured.
  if (rewrite && r.lists.size) {
    ctx.responseHooks.push(async (res: BufferedResponse) => {
      if (!String(res.headers['content-type'] ?? '').includes('json')) return;
      const out = rewrite(res.body.toString('utf8'));
      if (out !== undefined) res.body = Buffer.from(out);
    });
  }
}
