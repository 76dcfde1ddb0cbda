import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { ApiClient, OcteliumError, authenticatedClient, exampleText, exchangeAuthToken, resolveDomain } from '@octelium-ts/shared';
import {
  connectLogPath, connectStatePath, parsePublishSpec, parseStdioSpec, readConnectState, readConnectStates, startAgent,
  type AgentHandle, type AgentState,
} from '../agent/index.js';
import { statusLine } from '../agent/status-line.js';

interface ConnectOptions {
  serve: string[];
  serveStdio: string[];
  stdioMaxProcesses?: string;
  stdioIdleTimeout?: string;
  serveAll?: boolean;
  publish: string[];
  publishAllowHost: string[];
  detach?: boolean;
  authToken?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerConnect(program: Command): void {
  program
    .command('connect')
    .description('hold the outbound tunnel: serve your Services from this host and publish Services on local ports')
    .option('--serve <svc>', 'serve a Service whose upstream.user is you, dialing its upstream.url from here (repeatable)', collect, [])
    .option('--serve-stdio <spec>', "serve a Service from a stdio MCP server run here, one process per MCP session: 'SVC=COMMAND ARGS…' (repeatable)", collect, [])
    .option('--stdio-max-processes <n>', 'stdio server processes one Service may run at once (default 4)')
    .option('--stdio-idle-timeout <seconds>', 'end a stdio MCP session (and kill its process) after this long without a request (default 600)')
    .option('--serve-all', 'serve every Service assigned to your User')
    .option('-p, --publish <spec>', 'publish a Service on a local port: SVC:PORT or SVC:HOST:PORT (repeatable; port 0 picks one)', collect, [])
    .option('--publish-allow-host <name>', 'also accept this Host name on published ports (default: loopback names only; repeatable)', collect, [])
    .option('-d, --detach', 'run in the background (state and log in ~/.config/octelium/connect-<domain>.<pid>.json|.log)')
    .option('--auth-token <token>', 'auth-token Credential (default: $OCTELIUM_AUTH_TOKEN, else the stored login Session)')
    .addHelpText('after', exampleText([
      'octelium connect --serve laptop-mcp                      # serve it from this host',
      "octelium connect --serve-stdio 'files=npx -y @modelcontextprotocol/server-filesystem /srv'",
      'octelium connect -p my-mcp:3333                          # then http://127.0.0.1:3333/mcp, no token needed',
      'octelium connect -d --serve laptop-mcp --auth-token "$TOKEN"   # in the background',
    ]) + '\n\nExits 3 when the cluster refuses the Session and it cannot be renewed (revoked, expired, logged out): log in again.')
    .action(async (o: ConnectOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { domain?: string };
      const domain = resolveDomain(g);
      const publish = o.publish.map(parsePublishSpec);
      const serveStdio = o.serveStdio.map(parseStdioSpec);
      const stdioLimits = {
        ...(o.stdioMaxProcesses !== undefined ? { maxProcesses: positiveInt(o.stdioMaxProcesses, '--stdio-max-processes') } : {}),
        ...(o.stdioIdleTimeout !== undefined ? { idleTimeoutMs: positiveInt(o.stdioIdleTimeout, '--stdio-idle-timeout') * 1000 } : {}),
      };
      const authToken = o.authToken ?? process.env.OCTELIUM_AUTH_TOKEN;
      if (o.detach) assertNotServedYet(domain, o);
      // Authenticate in the foreground, so a bad token fails here and not in a detached process nobody watches.
      const client = await authenticatedClient({ domain, authToken: o.authToken });
      const accessToken = client.accessToken!;
      if (o.detach) return detach(domain, o, accessToken, authToken);

      // With an auth token the Session can be renewed when it expires; a stored login Session cannot.
      const renewAccessToken = authToken ? async () => (await exchangeAuthToken(new ApiClient({ domain }), authToken)).accessToken : undefined;
      const tty = Boolean(process.stdout.isTTY);
      const messages: string[] = [];
      const log = tty
        ? (msg: string) => void messages.push(`${new Date().toLocaleTimeString()} ${msg}`)
        : (msg: string, fields?: Record<string, unknown>) => console.error(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`);
      let prev: AgentState | undefined;
      const printLine = (s: AgentState) => {
        const line = statusLine(prev, s);
        prev = s;
        if (line) console.log(line);
      };
      const agent = await startAgent({
        domain, accessToken, renewAccessToken, serve: o.serve, serveStdio, stdioLimits, serveAll: Boolean(o.serveAll), publish, log,
        publishAllowedHosts: o.publishAllowHost,
        onState: tty ? undefined : printLine,
      });
      if (!tty && !prev) printLine(agent.state);
      const ui = tty ? await renderStatusView(agent, () => messages) : undefined;
      const fatal = await untilStopped(agent, ui?.waitUntilExit());
      await agent.close();
      ui?.unmount();
      if (fatal?.lastErrorCode === 'UNAUTHENTICATED') {
        throw new OcteliumError('UNAUTHENTICATED', `${fatal.lastError ?? 'the cluster refused the Session'} — it was revoked, expired or logged out: run \`octelium login --domain ${domain}\` again (or pass --auth-token), then restart octelium connect`);
      }
      if (fatal) throw new OcteliumError('UNREACHABLE', fatal.lastError ?? 'cannot connect');
    });
}

/** ink and React load only for a terminal, so `octelium` start-up does not pay for them in scripts and logs. */
async function renderStatusView(agent: AgentHandle, messages: () => string[]) {
  const [{ default: React }, { render }, { ConnectStatusView }] = await Promise.all([
    import('react'), import('ink'), import('../agent/status-view.js'),
  ]);
  return render(React.createElement(ConnectStatusView, { agent, messages }));
}

/**
 * Runs until SIGINT/SIGTERM (or the ink view exits on Ctrl-C). Returns the state when the agent can never succeed:
 * its Session is refused and cannot be renewed (the agent gave up), or no common protocol version before it ever
 * connected.
 */
function untilStopped(agent: AgentHandle, uiExit?: Promise<unknown>): Promise<AgentState | undefined> {
  return new Promise((resolve) => {
    const done = (fatal?: AgentState) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      agent.off('state', onState);
      resolve(fatal);
    };
    const onSignal = () => done();
    const onState = (s: AgentState) => {
      if (s.gaveUp || (!s.everConnected && s.lastErrorCode === 'UNSUPPORTED_VERSION')) done(s);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    agent.on('state', onState);
    onState(agent.state);
    void uiExit?.then(() => done(), () => done());
  });
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new OcteliumError('INVALID_ARGUMENT', `${flag} expects a positive integer, got "${v}"`);
  return n;
}

/**
 * Several agents may run for one cluster (one serving, another publishing); a second detached agent serving a
 * Service that a running one already serves is almost always a mistake, so `-d` refuses it.
 */
function assertNotServedYet(domain: string, o: ConnectOptions): void {
  const wanted = new Set([...o.serve, ...o.serveStdio.map((s) => parseStdioSpec(s).service)]);
  for (const existing of readConnectStates(domain)) {
    const both = existing.serving.filter((s) => wanted.has(s) || o.serveAll);
    if (both.length) {
      throw new OcteliumError('CONFLICT', `octelium connect (pid ${existing.pid}) already serves ${both.join(', ')} for ${domain}; stop it first: kill ${existing.pid}`);
    }
  }
}

/** `-d`: start this same command again without -d, detached, logging next to its state file; report and exit 0. */
async function detach(domain: string, o: ConnectOptions, accessToken: string, authToken?: string): Promise<void> {
  assertNotServedYet(domain, o);
  // The log is named after the child's pid, known only once it runs: open a temporary name, rename it after.
  const startingLog = connectLogPath(domain, process.pid).replace(/\.log$/, '.starting.log');
  mkdirSync(dirname(startingLog), { recursive: true, mode: 0o700 });
  const out = openSync(startingLog, 'a', 0o600);
  const args = [
    ...process.execArgv, process.argv[1], '--domain', domain, 'connect',
    ...o.serve.flatMap((s) => ['--serve', s]),
    ...o.serveStdio.flatMap((s) => ['--serve-stdio', s]),
    ...(o.stdioMaxProcesses !== undefined ? ['--stdio-max-processes', o.stdioMaxProcesses] : []),
    ...(o.stdioIdleTimeout !== undefined ? ['--stdio-idle-timeout', o.stdioIdleTimeout] : []),
    ...(o.serveAll ? ['--serve-all'] : []),
    ...o.publish.flatMap((p) => ['-p', p]),
    ...o.publishAllowHost.flatMap((h) => ['--publish-allow-host', h]),
  ];
  // Tokens go through the environment, never argv (visible in `ps`). The auth token lets the child renew its Session.
  const env = { ...process.env, OCTELIUM_ACCESS_TOKEN: accessToken, ...(authToken ? { OCTELIUM_AUTH_TOKEN: authToken } : {}) };
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env });
  child.unref();
  closeSync(out);
  const pid = child.pid!;
  const statePath = connectStatePath(domain, pid);
  const logPath = connectLogPath(domain, pid);
  renameSync(startingLog, logPath); // the child keeps writing to it: the open file moves with the name
  // Record the pid at once, unless the child already wrote its own state (exclusive create: never clobber it).
  try {
    writeFileSync(statePath, JSON.stringify({ pid, domain, state: 'connecting', since: new Date().toISOString(), serving: [], publishing: [] }, null, 2) + '\n', { flag: 'wx', mode: 0o600 });
  } catch {
    // the child was faster
  }

  // Wait briefly to report something useful; the child keeps going either way.
  const deadline = Date.now() + 5000;
  let exited = false;
  child.once('exit', () => (exited = true));
  let st = readConnectState(domain, pid);
  while (!exited && st?.state !== 'connected' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    st = readConnectState(domain, pid);
  }
  if (exited || !st) throw new OcteliumError('INTERNAL', `octelium connect exited at start; see ${logPath}`);
  const line = st.state === 'connected'
    ? `connected as ${st.user}; serving ${st.serving.join(', ') || 'nothing'}${st.publishing.length ? `; publishing ${st.publishing.map((p) => `${p.service} on http://${p.address}`).join(', ')}` : ''}`
    : `${st.state}${st.lastError ? ` (${st.lastError})` : ''}`;
  console.log(`octelium connect running in the background (pid ${pid}): ${line}\nlog: ${logPath}\nstop: kill ${pid}`);
}
