/**
 * `octelium connect --serve <svc>` for the tunnel scenario (d), in its own process, through the agent's public API
 * (startAgent from packages/connect/src/agent). Reports `ready` with whether the tunnel came up.
 * Env: OCT_BENCH_DOMAIN, OCT_BENCH_TOKEN (Session access token), OCT_BENCH_SERVE (Service name).
 */
import { startAgent, type AgentHandle } from '../../packages/connect/src/agent/index.js';
import { sendReady, serveIpc } from './ipc.js';

const timeoutMs = Number(process.env.OCT_BENCH_CONNECT_TIMEOUT_MS ?? 8000);
let agent: AgentHandle | undefined;
try {
  agent = await startAgent({
    domain: process.env.OCT_BENCH_DOMAIN!,
    accessToken: process.env.OCT_BENCH_TOKEN!,
    serve: [process.env.OCT_BENCH_SERVE!],
    serveAll: false,
    publish: [],
    stateFile: false,
  });
  const a = agent;
  const connected = await new Promise<boolean>((resolve) => {
    if (a.state.state === 'connected') return resolve(true);
    const t = setTimeout(() => (a.off('state', on), resolve(false)), timeoutMs);
    function on(s: { state: string }) {
      if (s.state !== 'connected') return;
      clearTimeout(t);
      a.off('state', on);
      resolve(true);
    }
    a.on('state', on);
  });
  serveIpc({ stats: () => a.stats() });
  sendReady({ connected, state: a.state });
} catch (err) {
  sendReady({ connected: false, state: { error: (err as Error).message } });
}

const stop = async () => {
  await agent?.close().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
