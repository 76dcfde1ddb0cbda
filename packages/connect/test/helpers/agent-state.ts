import type { AgentHandle, AgentState } from '../../src/agent/index.js';

/** Resolves with the agent's state once `pred` holds (now or on a later 'state' event); rejects after `ms`. */
export function waitAgentState(a: AgentHandle, pred: (s: AgentState) => boolean, ms = 3000): Promise<AgentState> {
  if (pred(a.state)) return Promise.resolve(a.state);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`state not reached; last: ${JSON.stringify(a.state)}`)), ms);
    const f = (s: AgentState) => {
      if (!pred(s)) return;
      clearTimeout(t);
      a.off('state', f);
      resolve(s);
    };
    a.on('state', f);
  });
}
