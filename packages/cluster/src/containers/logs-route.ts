import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError, canonicalServiceName } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { ContainerRuntime } from './runtime.js';
import { serviceLabelOf } from './workload.js';

/**
 * `GET /api/v1/containerlogs?service=S[&follow=true][&tail=N]` (behind `octeliumctl logs --service S --container`):
 * the stdout/stderr of the Service's containers as server-sent events, one `{replica, stream, text}` per line.
 */
export function containerLogsRoute(store: ResourceStore, runtime: () => ContainerRuntime | undefined, why: () => string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const name = url.searchParams.get('service');
    if (!name) throw new OcteliumError('INVALID_ARGUMENT', 'service is required');
    const tailRaw = url.searchParams.get('tail');
    const tail = tailRaw === null ? undefined : Number(tailRaw);
    if (tail !== undefined && (!Number.isSafeInteger(tail) || tail < 0)) throw new OcteliumError('INVALID_ARGUMENT', 'tail must be a non-negative integer');
    const svc = store.mustGet('Service', canonicalServiceName(name));
    const rt = runtime();
    if (!rt) throw new OcteliumError('UNREACHABLE', `no container runtime: ${why()}`);
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    const lines = rt.logs(serviceLabelOf(svc.metadata.name), { follow: url.searchParams.get('follow') === 'true', tail, signal: abort.signal });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.flushHeaders();
    try {
      for await (const l of lines) {
        if (abort.signal.aborted) break;
        // A reader that stops reading and then goes away never drains: wait for either, or this loop stays forever.
        if (!res.write(`data: ${JSON.stringify(l)}\n\n`)) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r); });
      }
    } catch (err) {
      if (!abort.signal.aborted) res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
    }
    res.end();
  };
}
