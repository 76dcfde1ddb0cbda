import { OcteliumError } from '@octelium-ts/shared';
import { bearerToken } from '../../api/http-util.js';
import type { GatewayContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';

/** authenticate: Bearer / X-Octelium-Auth → Principal; anonymous Services need none. */
export function authnStage(deps: GatewayDeps) {
  return async function authenticate(ctx: GatewayContext): Promise<void> {
    const spec = ctx.entry!.spec;
    if (spec.isAnonymous) {
      ctx.anonymous = true;
      return;
    }
    // An afterRoute stage may have named the caller already: a federated MCP Service's member hop (mcp/federation).
    let principal = ctx.principal;
    if (!principal) {
      const token = bearerToken(ctx.req);
      if (!token) throw new OcteliumError('UNAUTHENTICATED', 'no credential: send an access token as "Authorization: Bearer <token>" or "X-Octelium-Auth"');
      principal = await deps.identity.authenticate(token);
      if (!principal) throw new OcteliumError('UNAUTHENTICATED', 'invalid or expired access token', undefined, 401);
      ctx.principal = principal;
    }
    const sessionType = (principal.session?.status as { type?: string } | undefined)?.type;
    // Octelium: a non-public Service is reachable only client-based (octelium connect), never clientless.
    if (!spec.isPublic && sessionType === 'CLIENTLESS') {
      throw new OcteliumError('SERVICE_NOT_PUBLIC', `Service "${ctx.service!.metadata.name}" is not public; reach it through \`octelium connect\``);
    }
  };
}
