import type { Command } from 'commander';
import { contextDomain, examples, lastDomain, listLogins, setCurrentDomain } from '@octelium-ts/shared';

/**
 * `octelium context list|use`: several clusters, one stored login each (named by its domain). `use` picks the one
 * commands talk to without --domain / OCTELIUM_DOMAIN / --context; logging in to a cluster also makes it current.
 */
export function registerContext(program: Command): void {
  const context = program.command('context').description('list the clusters you are logged in to, and pick the current one');
  examples(context, ['octelium context list', 'octelium context use cluster.example.com']);

  const list = context
    .command('list')
    .alias('ls')
    .description('every stored login: domain, user, Session expiry; * marks the current one')
    .option('-o, --out <format>', 'json for machine-readable output (default: a table)')
    .action((o: { out?: string }) => {
      const current = lastDomain();
      const rows = listLogins().map((l) => ({ name: l.domain, current: l.domain === current, user: l.user, session: l.session, expiresAt: l.expiresAt }));
      if (o.out === 'json') return console.log(JSON.stringify(rows, null, 2));
      if (!rows.length) return console.error('No contexts: log in first (octelium login --domain DOMAIN)');
      const cells = [['CURRENT', 'NAME', 'USER', 'EXPIRES'], ...rows.map((r) => [r.current ? '*' : '', r.name, r.user, expiry(r.expiresAt)])];
      const widths = cells[0].map((_, i) => Math.max(...cells.map((c) => c[i].length)));
      for (const c of cells) console.log(c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]))).join('   '));
    });
  examples(list, ['octelium context list', 'octelium context list -o json']);

  const use = context
    .command('use')
    .description('make a stored login the current context')
    .argument('<name>', 'a context name (the cluster domain, as in `octelium context list`)')
    .action((name: string) => {
      const domain = contextDomain(name);
      setCurrentDomain(domain);
      console.log(`Switched to context ${domain}`);
    });
  examples(use, ['octelium context use localhost:8090', 'octeliumctl --context cluster.example.com get svc   # one command only']);
}

function expiry(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return ms <= Date.now() ? `${iso} (expired)` : iso;
}
