import { OcteliumError, type Plugin } from '@octelium-ts/shared';
import type { GatewayContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { buildFacts } from '../facts.js';
import { respondFromPlugin } from '../plugin-responses.js';

function pluginType(p: Plugin): string {
  return p.lua ? 'lua' : p.extProc ? 'extProc' : p.direct ? 'direct' : p.path ? 'path' : 'unknown';
}

/** Static request/response header edits from `config.http.header`. */
function applyHeaderConfig(ctx: GatewayContext): void {
  const h = ctx.config?.http?.header;
  if (!h) return;
  for (const k of h.removeRequestHeaders ?? []) delete ctx.upstreamHeaders[k.toLowerCase()];
  for (const kv of h.addRequestHeaders ?? []) {
    const k = kv.key.toLowerCase();
    const prev = ctx.upstreamHeaders[k];
    ctx.upstreamHeaders[k] = kv.append && prev !== undefined ? [...(Array.isArray(prev) ? prev : [prev]), kv.value] : kv.value;
  }
  ctx.responseHeaderEdits.remove.push(...(h.removeResponseHeaders ?? []));
  for (const kv of h.addResponseHeaders ?? []) ctx.responseHeaderEdits.set[kv.key.toLowerCase()] = kv.value;
}

/** plugins: header config, then each enabled plugin in phase order whose `condition` holds. */
export function pluginsStage(deps: GatewayDeps) {
  return async function plugins(ctx: GatewayContext): Promise<void> {
    applyHeaderConfig(ctx);
    for (const p of ctx.entry!.plugins) {
      ctx.facts ??= buildFacts(ctx);
      if (p.condition && !deps.evaluateCondition(p.condition, ctx.facts)) continue;
      const run = { name: p.name, type: pluginType(p), outcome: 'continue' } as GatewayContext['plugins'][number];
      ctx.plugins.push(run);
      try {
        if (p.path) {
          const q = ctx.upstreamPath.indexOf('?');
          let path = q < 0 ? ctx.upstreamPath : ctx.upstreamPath.slice(0, q);
          const query = q < 0 ? '' : ctx.upstreamPath.slice(q);
          if (p.path.removePrefix && path.startsWith(p.path.removePrefix)) path = path.slice(p.path.removePrefix.length) || '/';
          if (p.path.addPrefix) path = p.path.addPrefix.replace(/\/+$/, '') + (path.startsWith('/') ? path : '/' + path);
          ctx.upstreamPath = path + query;
          run.outcome = 'rewritten';
        } else if (p.direct) {
          respondFromPlugin(ctx, p.direct.statusCode, p.direct.headers ?? {}, p.direct.body?.inline ?? '');
          run.outcome = 'responded';
          return;
        } else {
          const rt = deps.pluginRuntimes.find((r) => r.applies(p));
          if (!rt) throw new OcteliumError('PLUGIN_FAILED', `plugin "${p.name}": no runtime for this plugin type`);
          await rt.onRequest(p, ctx);
          if (ctx.responded) {
            run.outcome = 'responded';
            return;
          }
        }
      } catch (err) {
        const e = err instanceof OcteliumError ? err : new OcteliumError('PLUGIN_FAILED', `plugin "${p.name}" failed: ${(err as Error).message}`);
        run.outcome = e.code === 'OCT_ERR_PLUGIN_EXIT' ? 'exit' : 'error';
        run.error = e.message;
        throw e;
      }
    }
  };
}
