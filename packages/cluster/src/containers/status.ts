import type { ContainerState, WorkloadView } from './endpoints.js';
import type { Workload } from './workload.js';

/** `status.container` of a Service (design.md §8); `configs` only when dynamicConfig runs containers of its own. */
export interface ContainerStatus {
  state: ContainerState;
  replicas: number;
  ready: number;
  message: string;
  configs?: Record<string, { state: ContainerState; replicas: number; ready: number; message: string }>;
}

const RANK: Record<ContainerState, number> = { Running: 0, Pending: 1, Failed: 2 };

/** One status for all the Service's workloads: the worst state, summed counts, messages prefixed by config. */
export function aggregateStatus(items: Array<{ workload: Workload; view: WorkloadView }>): ContainerStatus | undefined {
  if (!items.length) return undefined;
  let state: ContainerState = 'Running';
  let replicas = 0;
  let ready = 0;
  const messages: string[] = [];
  for (const { workload, view } of items) {
    if (RANK[view.state] > RANK[state]) state = view.state;
    replicas += view.replicas;
    ready += view.ready;
    if (view.message) messages.push(items.length > 1 ? `${workload.config}: ${view.message}` : view.message);
  }
  const out: ContainerStatus = { state, replicas, ready, message: messages.join('; ') };
  if (items.length > 1) {
    out.configs = Object.fromEntries(items.map(({ workload, view }) => [workload.config, { state: view.state, replicas: view.replicas, ready: view.ready, message: view.message }]));
  }
  return out;
}

/** Replaces every Secret value (and its base64, as registry auth headers carry it) in a message. */
export function scrub(message: string, secrets: string[]): string {
  let out = message;
  for (const s of secrets) {
    if (s.length < 4) continue;
    for (const form of [s, Buffer.from(s).toString('base64')]) out = out.split(form).join('[redacted]');
  }
  return out;
}
