import { OcteliumError, type Plugin } from '@octelium-ts/shared';
import type { GatewayContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { buildFacts } from '../facts.js';
import { respondFromPlugin } from '../plugin-responses.js';
import { pluginsFor } from '../service-index.js';

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

/**
 * Whether a plugin runs. A condition that reads what the request lacks is false (the plugin is skipped), as
 * in Octelium. A condition that cannot be evaluated for another reason (a type error …) fails closed: the
 * request is stopped with PLUGIN_FAILED and the plugin's run records the error. Octelium logs such an error
 * and skips the plugin (vigil commonplugin ShouldEnforcePlugin); we deliberately differ, because a plugin
 * gated by a condition is often the check (a Lua validation, an ExtProc filter) that the request must pass.
 */
function shouldRun(deps: GatewayDeps, ctx: GatewayContext, p: Plugin): boolean {
  if (!p.condition) return true;
  const c = deps.evaluateCondition(p.condition, (ctx.facts ??= buildFacts(ctx)));
  if (!c.error) return c.matched;
  ctx.plugins.push({ name: p.name, type: pluginType(p), outcome: 'error', error: `condition could not be evaluated (${c.error.code}): ${c.error.message}` });
  throw new OcteliumError('PLUGIN_FAILED', `plugin "${p.name}": its condition could not be evaluated (${c.error.code}); request denied`, { reason: 'condition', evaluationError: c.error.code });
}

/** plugins: header config, then each enabled plugin of the config in effect, in phase order, whose `condition` holds. */
export function pluginsStage(deps: GatewayDeps) {
  return function plugins(ctx: GatewayContext): void | Promise<void> {
    applyHeaderConfig(ctx);
    const list = pluginsFor(ctx.entry!, ctx.dynamicConfigName);
    // Most Services have no plugins: no async frame and promise for them.
    if (list.length) return runPlugins(deps, ctx, list);
  };
}

async function runPlugins(deps: GatewayDeps, ctx: GatewayContext, list: readonly Plugin[]): Promise<void> {
  for (const p of list) {
    if (!shouldRun(deps, ctx, p)) continue;
    ctx.facts ??= buildFacts(ctx);
    const run = { name: p.name, type: pluginType(p), outcome: 'continue' } as GatewayContext['plugins'][number];
    ctx.plugins.push(run);
    const seen = { path: ctx.upstreamPath, body: ctx.body };
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
      // Facts are built once, and rebuilt here explicitly: later plugin conditions see the rewritten path and body.
      if (ctx.upstreamPath !== seen.path || ctx.body !== seen.body) ctx.facts = buildFacts(ctx);
    } catch (err) {
      const e = err instanceof OcteliumError ? err : new OcteliumError('PLUGIN_FAILED', `plugin "${p.name}" failed: ${(err as Error).message}`);
      run.outcome = e.code === 'OCT_ERR_PLUGIN_EXIT' ? 'exit' : 'error';
      run.error = e.message;
      throw e;
    }
  }
}
