import { clusterURL, API_PREFIX } from './cluster-info.js';
import { OcteliumError, errorFromBody, isErrorBody } from './errors.js';
import { KINDS, type KindName } from './kinds.js';
import type { Resource } from './resource.js';
import type {
  ApplyRequest, ApplyResponse, CreateCredentialResponse, ListResponse, LoginResponse, WhoAmIResponse,
} from './api-types.js';
import type { AccessLog, AccessLogFilter } from './accesslog.js';

/** undici loads with the first request, not at import: `--help` and argument errors never need it (start-up budget). */
const request: typeof import('undici').request = async (...args) => (await import('undici')).request(...args);

/** One line a managed container wrote (GET /api/v1/containerlogs). */
export interface ContainerLogLine { replica: string; stream: 'stdout' | 'stderr'; text: string }

export interface ApiClientOptions { domain: string; accessToken?: string }

/** Typed client of the control-plane API; every CLI goes through it. */
export class ApiClient {
  readonly baseURL: string;
  readonly domain: string;
  accessToken?: string;

  constructor(opts: ApiClientOptions) {
    this.domain = opts.domain;
    this.baseURL = clusterURL(opts.domain);
    this.accessToken = opts.accessToken;
  }

  async call<T>(method: string, path: string, body?: unknown, query?: Record<string, string | undefined>): Promise<T> {
    const url = new URL(API_PREFIX + path, this.baseURL);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    let res;
    try {
      res = await request(url, {
        method: method as 'GET',
        headers: {
          ...(this.accessToken ? { authorization: `Bearer ${this.accessToken}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new OcteliumError('UNREACHABLE', `cannot reach cluster at ${this.baseURL}: ${(err as Error).message || (err as { code?: string }).code} (is it running, and are --domain/OCTELIUM_DOMAIN right?)`);
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new OcteliumError('INTERNAL', `cluster at ${this.baseURL} answered ${res.statusCode} with a non-JSON body`);
    }
    if (res.statusCode >= 400) {
      if (isErrorBody(json)) throw errorFromBody(json, res.statusCode);
      throw new OcteliumError('INTERNAL', `cluster answered HTTP ${res.statusCode}`);
    }
    return json as T;
  }

  list(kind: KindName, query?: Record<string, string | undefined>): Promise<ListResponse> {
    return this.call('GET', `/${KINDS[kind].plural}`, undefined, query);
  }
  get(kind: KindName, name: string): Promise<Resource> {
    return this.call('GET', `/${KINDS[kind].plural}/${encodeURIComponent(name)}`);
  }
  create(r: Resource): Promise<Resource> {
    return this.call('POST', `/${KINDS[r.kind].plural}`, r);
  }
  update(r: Resource): Promise<Resource> {
    return this.call('PUT', `/${KINDS[r.kind].plural}/${encodeURIComponent(r.metadata.name)}`, r);
  }
  delete(kind: KindName, name: string): Promise<Resource> {
    return this.call('DELETE', `/${KINDS[kind].plural}/${encodeURIComponent(name)}`);
  }
  apply(req: ApplyRequest): Promise<ApplyResponse> {
    return this.call('POST', '/apply', req);
  }
  createCredential(r: Resource): Promise<CreateCredentialResponse> {
    return this.call('POST', '/credentials', r);
  }
  login(authToken: string): Promise<LoginResponse> {
    return this.call('POST', '/login', { authToken });
  }
  logout(): Promise<unknown> {
    return this.call('POST', '/logout', {});
  }
  whoami(): Promise<WhoAmIResponse> {
    return this.call('GET', '/whoami');
  }
  accessLogs(filter: AccessLogFilter & { limit?: number }): Promise<{ items: AccessLog[] }> {
    return this.call('GET', '/accesslogs', undefined, { ...filter, limit: filter.limit?.toString() } as Record<string, string | undefined>);
  }

  /** Live AccessLogs as server-sent events; `onLog` per entry until `signal` aborts. */
  async followAccessLogs(filter: AccessLogFilter, onLog: (l: AccessLog) => void, signal?: AbortSignal): Promise<void> {
    const url = new URL(API_PREFIX + '/accesslogs', this.baseURL);
    url.searchParams.set('follow', 'true');
    for (const [k, v] of Object.entries(filter)) if (v) url.searchParams.set(k, String(v));
    await this.#events(url, (data) => onLog(JSON.parse(data) as AccessLog), signal);
  }

  /**
   * stdout/stderr of a Service's managed containers (`octeliumctl logs --service S --container`): past lines, then
   * new ones while `follow` holds, until `signal` aborts.
   */
  async containerLogs(service: string, opts: { follow?: boolean; tail?: number }, onLine: (l: ContainerLogLine) => void, signal?: AbortSignal): Promise<void> {
    const url = new URL(API_PREFIX + '/containerlogs', this.baseURL);
    url.searchParams.set('service', service);
    if (opts.follow) url.searchParams.set('follow', 'true');
    if (opts.tail !== undefined) url.searchParams.set('tail', String(opts.tail));
    await this.#events(url, (data, event) => {
      if (event === 'error') throw new OcteliumError('UNREACHABLE', `container logs ended: ${(JSON.parse(data) as { message: string }).message}`);
      onLine(JSON.parse(data) as ContainerLogLine);
    }, signal);
  }

  /** Reads a server-sent event stream from the API, one callback per event. */
  async #events(url: URL, onEvent: (data: string, event: string | undefined) => void, signal?: AbortSignal): Promise<void> {
    let res;
    try {
      res = await request(url, { headers: { authorization: `Bearer ${this.accessToken}`, accept: 'text/event-stream' }, signal });
    } catch (err) {
      if (signal?.aborted) return;
      throw new OcteliumError('UNREACHABLE', `cannot reach cluster at ${this.baseURL}: ${(err as Error).message}`);
    }
    if (res.statusCode >= 400) {
      const json = await res.body.json().catch(() => undefined);
      if (isErrorBody(json)) throw errorFromBody(json, res.statusCode);
      throw new OcteliumError('INTERNAL', `cluster answered HTTP ${res.statusCode}`);
    }
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += chunk.toString();
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const lines = block.split('\n');
          const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
          if (data) onEvent(data, event);
        }
      }
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
  }
}
