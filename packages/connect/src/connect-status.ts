/** State of the local `octelium connect` agent for a domain, as `octelium status` shows it (filled in by the agent). */
export function connectStatus(_domain: string): Record<string, unknown> {
  return { state: 'not running' };
}
