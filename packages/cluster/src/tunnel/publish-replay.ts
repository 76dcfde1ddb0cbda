import { pipeline } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { endToEndHeaders, type TunnelStream } from '@octelium-ts/shared';
import type { AgentConnection } from './agent-conn.js';
import { isServiceName } from './services.js';

export interface ReplayContext {
  selfURL: string;
  dispatcher: Dispatcher;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * A published stream (agent → cluster, `octelium connect -p SVC:PORT`) is replayed as an ordinary request to the
 * cluster's own listener, `/svc/<svc>/<path>`, carrying the agent's Session token. So the full gateway pipeline
 * (authentication, policies, plugins, AccessLog) applies to it exactly as to any client of the agent's User; the hub
 * adds no authorization path of its own.
 */
export async function replayPublished(stream: TunnelStream, conn: AgentConnection, ctx: ReplayContext): Promise<void> {
  const head = stream.requestHead;
  if (!isServiceName(head.service)) {
    stream.reset('REFUSED', `not a valid Service name: ${head.service}`);
    return;
  }
  const url = `${ctx.selfURL.replace(/\/+$/, '')}/svc/${head.service}${head.path}`;
  // Whatever credential the local client sent is not the agent's to forward: the agent's User is the actor.
  const headers = endToEndHeaders(head.headers, ['authorization', 'x-octelium-auth']);
  headers['x-octelium-auth'] = conn.token;
  if (!head.hasBody) stream.readable.resume();

  // Only a stream that ended abnormally before the response was sent in full aborts the replayed request; a completed
  // one is left alone (aborting it would be wasted work, and could cut a keep-alive connection).
  const ac = new AbortController();
  stream.once('close', () => {
    if (stream.error && !stream.writable.writableFinished) ac.abort(stream.error);
  });
  try {
    const res = await request(url, {
      method: head.method as Dispatcher.HttpMethod,
      headers,
      body: head.hasBody ? stream.readable : undefined,
      signal: ac.signal,
      dispatcher: ctx.dispatcher,
    });
    if (stream.closed) {
      res.body.destroy();
      return;
    }
    stream.respond({ status: res.statusCode, headers: endToEndHeaders(res.headers) });
    pipeline(res.body, stream.writable, (err) => {
      if (err && !stream.closed) stream.reset('UPSTREAM_FAILED', `cluster response failed: ${err.message}`);
    });
  } catch (err) {
    if (stream.closed) return;
    ctx.log('tunnel: published request failed', { agent: conn.id, service: head.service, error: (err as Error).message });
    stream.reset('UPSTREAM_FAILED', `cluster request failed: ${(err as Error).message}`);
  }
}
