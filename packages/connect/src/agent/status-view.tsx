import React, { useEffect, useState } from 'react';
import { Box, Text } from 'ink';
import type { AgentHandle, AgentState, AgentStats } from './index.js';

const COLOR: Record<AgentState['state'], string> = { connected: 'green', connecting: 'yellow', disconnected: 'red' };

function clock(iso?: string): string {
  return iso ? new Date(iso).toLocaleTimeString() : '';
}

function Row({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <Box>
      <Box width={12}><Text dimColor>{label}</Text></Box>
      <Box flexDirection="column">{children}</Box>
    </Box>
  );
}

/** Live view of `octelium connect` in a terminal: connection state, Services served/published, stream counts. */
export function ConnectStatusView({ agent, messages }: { agent: AgentHandle; messages?: () => string[] }) {
  const [state, setState] = useState<AgentState>(agent.state);
  const [stats, setStats] = useState<AgentStats>(agent.stats());
  const [, setTick] = useState(0);
  useEffect(() => {
    const onState = (s: AgentState) => setState(s);
    agent.on('state', onState);
    // Stream counts change per request; polling keeps re-renders at a human pace.
    const t = setInterval(() => {
      setStats(agent.stats());
      setTick((n) => n + 1);
    }, 500);
    return () => {
      agent.off('state', onState);
      clearInterval(t);
    };
  }, [agent]);

  const retryIn = state.retryAt ? Math.max(0, Math.round((Date.parse(state.retryAt) - Date.now()) / 100) / 10) : undefined;
  const recent = messages?.().slice(-3) ?? [];
  return (
    <Box flexDirection="column" paddingX={1}>
      <Box>
        <Text bold>octelium connect</Text>
        <Text> → {state.domain}  </Text>
        <Text color={COLOR[state.state]}>● {state.state}</Text>
        {state.user ? <Text> as {state.user}</Text> : null}
        <Text dimColor> since {clock(state.since)}</Text>
      </Box>
      <Row label="Serving">
        {state.serving.length ? state.serving.map((s) => <Text key={s}>{s}</Text>) : <Text dimColor>nothing</Text>}
      </Row>
      {state.rejected?.length ? (
        <Row label="Refused">
          {state.rejected.map((r) => <Text key={r.name} color="red">{r.name}: {r.reason}</Text>)}
        </Row>
      ) : null}
      <Row label="Publishing">
        {state.publishing.length
          ? state.publishing.map((p) => <Text key={p.address}>{p.service} → http://{p.address}</Text>)
          : <Text dimColor>nothing</Text>}
      </Row>
      <Row label="Streams">
        <Text>{stats.activeStreams} active · {stats.served} served · {stats.published} published</Text>
      </Row>
      {state.state !== 'connected' && state.lastError ? (
        <Row label="Last error">
          <Text color="red">{state.lastError}{retryIn !== undefined && state.state === 'disconnected' ? ` (retry in ${retryIn}s)` : ''}</Text>
        </Row>
      ) : null}
      {recent.length ? (
        <Row label="Log">
          {recent.map((m, i) => <Text key={i} dimColor wrap="truncate">{m}</Text>)}
        </Row>
      ) : null}
      <Text dimColor>Ctrl-C to disconnect</Text>
    </Box>
  );
}
