import type { Issue, Resource, ServiceSpec } from '@octelium-ts/shared';

/** Apply-time check: every inline Lua script of a Service must parse (a syntax error rejects the apply). */
export async function checkLuaPlugins(r: Resource): Promise<Issue[]> {
  if (r.kind !== 'Service') return [];
  const spec = r.spec as ServiceSpec;
  const issues: Issue[] = [];
  const lists: Array<[Array<string | number>, ServiceSpec['config']]> = [[['spec', 'config'], spec.config]];
  spec.dynamicConfig?.configs.forEach((c, i) => lists.push([['spec', 'dynamicConfig', 'configs', i], c]));
  for (const [prefix, cfg] of lists) {
    for (const [i, p] of (cfg?.http?.plugins ?? []).entries()) {
      if (!p.lua) continue;
      // Loaded only when a Service has Lua plugins (wasmoon is heavy to start).
      const { checkLuaScript } = await import('./lua/check-script.js');
      const err = await checkLuaScript(p.lua.inline);
      if (err) issues.push({ path: [...prefix, 'http', 'plugins', i, 'lua', 'inline'], message: `plugin "${p.name}": ${err}` });
    }
  }
  return issues;
}
