import type { Command } from 'commander';
import { OcteliumError, type AccessLog, type AccessLogFilter } from '@octelium-ts/shared';
import { toRow, type LogRow } from '../log-row.js';
import { table } from '../output.js';
import { clientFor } from './common.js';

function line(l: AccessLog): string {
  const r = toRow(l);
  return `${l.metadata.createdAt} ${r.status} ${r.code} user=${r.user} service=${r.service} ${r.method} ${r.path}${r.mcp ? ` mcp=${r.mcp}` : ''}`;
}

/** `logs --service S --container [-f] [--tail N]`: one `<replica> | <line>` per line, stderr lines on stderr. */
async function containerLogs(client: Awaited<ReturnType<typeof clientFor>>, o: { service?: string; follow: boolean; out?: string; tail?: string }): Promise<void> {
  if (!o.service) throw new OcteliumError('INVALID_ARGUMENT', '--container needs --service <svc>');
  const tail = o.tail === undefined ? undefined : Number(o.tail);
  if (tail !== undefined && (!Number.isSafeInteger(tail) || tail < 0)) throw new OcteliumError('INVALID_ARGUMENT', `--tail must be a non-negative integer, got "${o.tail}"`);
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  await client.containerLogs(o.service, { follow: o.follow, tail }, (l) => {
    if (o.out === 'json') console.log(JSON.stringify(l));
    else (l.stream === 'stderr' ? process.stderr : process.stdout).write(`${l.replica} | ${l.text}\n`);
  }, abort.signal);
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description('show AccessLogs; -f follows new ones live. With --container: the stdout/stderr of the Service\'s managed containers')
    .option('--service <svc>')
    .option('--container', "the Service's container output instead of AccessLogs (needs --service)", false)
    .option('--tail <n>', 'with --container: lines per replica from the end (default: all)')
    .option('--user <user>')
    .option('--status <status>', 'ALLOWED or DENIED')
    .option('--method <method>', 'HTTP method or JSON-RPC method (e.g. tools/call)')
    .option('--limit <n>', 'how many past entries', '100')
    .option('-f, --follow', 'stream new entries', false)
    .option('-o, --out <format>', 'json: one AccessLog object per line')
    .action(async (o: AccessLogFilter & { limit: string; follow: boolean; out?: string; container: boolean; tail?: string }, cmd: Command) => {
      const client = await clientFor(cmd);
      if (o.container) return containerLogs(client, o);
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
