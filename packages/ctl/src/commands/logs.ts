import type { Command } from 'commander';
import { OcteliumError, exampleText, type AccessLog, type AccessLogFilter } from '@octelium-ts/shared';
import { logHeader, logLine, toRow, type LogRow } from '../log-row.js';
import { clientFor } from './common.js';

/** One output line per AccessLog, the same with and without -f: the table row, or the AccessLog as JSON. */
function printer(json: boolean): (l: AccessLog) => void {
  return json ? (l) => console.log(JSON.stringify(l)) : (l) => console.log(logLine(toRow(l)));
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
    .option('-o, --out <format>', 'json: one AccessLog object per line (default: a table, the same with and without -f)')
    .addHelpText('after', exampleText([
      'octeliumctl logs --service my-mcp --limit 20',
      'octeliumctl logs -f --status DENIED',
      'octeliumctl logs -f --method tools/call -o json | jq .entry.common.userRef.name',
      'octeliumctl logs --service my-mcp --container --tail 50',
    ]))
    .action(async (o: AccessLogFilter & { limit: string; follow: boolean; out?: string; container: boolean; tail?: string }, cmd: Command) => {
      const client = await clientFor(cmd);
      if (o.container) return containerLogs(client, o);
      const filter: AccessLogFilter = { service: o.service, user: o.user, status: o.status, method: o.method };
      if (!o.follow) {
        const { items } = await client.accessLogs({ ...filter, limit: Number(o.limit) });
        if (!items.length && o.out !== 'json') return console.error('No access logs');
        if (o.out !== 'json') console.log(logHeader());
        items.forEach(printer(o.out === 'json'));
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
      if (o.out !== 'json') console.log(logHeader());
      await client.followAccessLogs(filter, printer(o.out === 'json'), abort.signal);
    });
}
