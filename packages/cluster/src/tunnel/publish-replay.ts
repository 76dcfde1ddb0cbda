import type { Dispatcher } from 'undici';
import { endToEndHeaders, forwardStreamAsHTTP, publishedPathProblem, type TunnelStream } from '@octelium-ts/shared';
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
  // The agent checks this too; the hub cannot rely on it (any Session holder can speak the protocol).
  const problem = publishedPathProblem(head.path);
  if (problem) {
    stream.reset('REFUSED', problem);
    return;
  }
  // The path goes to the gateway as the agent sent it (no URL parsing on the way): the gateway is what authorizes it.
  const target = { origin: new URL(ctx.selfURL).origin, path: `/svc/${head.service}${head.path}` };
  // Whatever credential the local client sent is not the agent's to forward: the agent's User is the actor.
  const headers = endToEndHeaders(head.headers, ['authorization', 'x-octelium-auth']);
  headers['x-octelium-auth'] = conn.token;
  await forwardStreamAsHTTP(stream, target, headers, ctx.dispatcher, (err, phase) => {
    if (phase === 'request') ctx.log('tunnel: published request failed', { agent: conn.id, service: head.service, error: err.message });
    return `cluster ${phase} failed: ${err.message}`;
  });
}
