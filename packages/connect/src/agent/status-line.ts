import type { AgentState } from './index.js';

/**
 * The one human line to print for a state change when stdout is not a terminal (logs, `-d`), or undefined when
 * nothing a reader cares about changed (e.g. only the retry time moved).
 */
export function statusLine(prev: AgentState | undefined, s: AgentState): string | undefined {
  const same = (a?: unknown, b?: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (prev && prev.state === s.state && same(prev.serving, s.serving) && same(prev.publishing, s.publishing) && prev.lastError === s.lastError) {
    return undefined;
  }
  switch (s.state) {
    case 'connecting':
      return prev?.state === 'connecting' ? undefined : `connecting to ${s.domain}`;
    case 'connected': {
      const parts = [`connected to ${s.domain} as ${s.user ?? '?'}`];
      parts.push(s.serving.length ? `serving ${s.serving.join(', ')}` : 'serving nothing');
      if (s.publishing.length) parts.push(`publishing ${s.publishing.map((p) => `${p.service} on http://${p.address}`).join(', ')}`);
      for (const r of s.rejected ?? []) parts.push(`refused ${r.name} (${r.reason})`);
      return parts.join('; ');
    }
    case 'disconnected': {
      const retry = s.retryAt ? `; retrying in ${Math.max(0, (Date.parse(s.retryAt) - Date.now()) / 1000).toFixed(1)}s` : '';
      return `disconnected${s.lastError ? `: ${s.lastError}` : ''}${retry}`;
    }
  }
}
