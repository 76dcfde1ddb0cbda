import type { Command } from 'commander';
import type { AccessLog, AccessLogFilter } from '@octelium-ts/shared';
import { toRow, type LogRow } from '../log-row.js';
import { table } from '../output.js';
import { clientFor } from './common.js';

function line(l: AccessLog): string {
  const r = toRow(l);
  return `${l.metadata.createdAt} ${r.status} ${r.code} user=${r.user} service=${r.service} ${r.method} ${r.path}${r.mcp ? ` mcp=${r.mcp}` : ''}`;
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description('show AccessLogs; -f follows new ones live')
    .option('--service <svc>')
    .option('--user <user>')
    .option('--status <status>', 'ALLOWED or DENIED')
    .option('--method <method>', 'HTTP method or JSON-RPC method (e.g. tools/call)')
    .option('--limit <n>', 'how many past entries', '100')
    .option('-f, --follow', 'stream new entries', false)
    .option('-o, --out <format>', 'json: one AccessLog object per line')
    .action(async (o: AccessLogFilter & { limit: string; follow: boolean; out?: string }, cmd: Command) => {
      const client = await clientFor(cmd);
      const filter: AccessLogFilter = { service: o.service, user: o.user, status: o.status, method: o.method };
      if (!o.follow) {
        const { items } = await client.accessLogs({ ...filter, limit: Number(o.limit) });
        if (o.out === 'json') for (const l of items) console.log(JSON.stringify(l));
        else console.log(items.length ? table(['TIME', 'STATUS', 'CODE', 'USER', 'SERVICE', 'METHOD', 'PATH', 'MCP'], items.map(toRow).map((r) => [r.time, r.status, r.code, r.user, r.service, r.method, r.path, r.mcp])) : 'No access logs');
        return;
      }
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      if (process.stdout.isTTY && o.out !== 'json') {
        // ink and React load only for the live terminal view: they cost most of the CLI's start-up time.
        const [{ render }, React, { LogsView }] = await Promise.all([import('ink'), import('react'), import('../logs-view.js')]);
        const rows: LogRow[] = [];
        const app = render(React.createElement(LogsView, { rows }));
        await client.followAccessLogs(filter, (l) => {
          rows.push(toRow(l));
          app.rerender(React.createElement(LogsView, { rows: [...rows] }));
        }, abort.signal);
        app.unmount();
        return;
      }
      await client.followAccessLogs(filter, (l) => console.log(o.out === 'json' ? JSON.stringify(l) : line(l)), abort.signal);
    });
}
