import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { StdioServeSpec } from './command-line.js';

export interface StdioProcessOptions {
  /** Largest line (one JSON-RPC message) accepted on stdout. */
  maxMessageBytes: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  onmessage: (m: JSONRPCMessage) => void;
  /** The process is gone (exited, killed, or stopped for writing garbage); `why` says which. */
  onclose: (why: string, protocolError: boolean) => void;
}

const KILL_GRACE_MS = 2_000;
const MAX_STDERR_LINE = 2_000;

function isMessage(v: unknown): v is JSONRPCMessage {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const m = v as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return false;
  if (typeof m.method === 'string') return m.id === undefined || typeof m.id === 'string' || typeof m.id === 'number';
  return (typeof m.id === 'string' || typeof m.id === 'number') && ('result' in m || 'error' in m);
}

/**
 * One stdio MCP server process: newline-delimited JSON-RPC on stdin/stdout (the MCP stdio transport), stderr to
 * the agent's log. Written here rather than with the SDK's StdioClientTransport because the bridge needs what that
 * transport does not do: a cap on message size, stopping a process that writes anything but JSON-RPC on stdout
 * (its stdout IS the protocol), and killing the whole process tree (`npx` → node → the server), not only the child.
 */
export class StdioProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #o: StdioProcessOptions;
  #buffer = '';
  #closed = false;
  #killTimer?: NodeJS.Timeout;

  constructor(readonly spec: StdioServeSpec, o: StdioProcessOptions) {
    this.#o = o;
    // Its own process group (detached), so the whole tree can be signalled at once.
    this.#child = spawn(spec.command, spec.args, { stdio: ['pipe', 'pipe', 'pipe'], detached: process.platform !== 'win32', env: process.env });
    const decoder = new StringDecoder('utf8');
    this.#child.stdout.on('data', (chunk: Buffer) => this.#read(decoder.write(chunk)));
    let errLine = '';
    const errDecoder = new StringDecoder('utf8');
    this.#child.stderr.on('data', (chunk: Buffer) => {
      errLine += errDecoder.write(chunk);
      let nl: number;
      while ((nl = errLine.indexOf('\n')) >= 0) {
        this.#stderr(errLine.slice(0, nl));
        errLine = errLine.slice(nl + 1);
      }
      if (errLine.length > MAX_STDERR_LINE) {
        this.#stderr(errLine);
        errLine = '';
      }
    });
    this.#child.stdin.on('error', () => undefined); // EPIPE after the process died: reported by 'exit'
    this.#child.on('error', (err) => this.#close(`could not start "${spec.command}": ${err.message}`, false));
    this.#child.on('exit', (code, signal) => this.#close(`exited (${signal ?? `code ${code}`})`, false));
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #stderr(line: string): void {
    if (line.trim()) this.#o.log('stdio server stderr', { service: this.spec.service, pid: this.pid, line: line.slice(0, MAX_STDERR_LINE) });
  }

  #read(text: string): void {
    if (this.#closed) return;
    this.#buffer += text;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        msg = undefined;
      }
      if (!isMessage(msg)) return this.#garbage(`wrote something that is not a JSON-RPC message to stdout: ${JSON.stringify(line.slice(0, 200))}`);
      this.#o.onmessage(msg);
      if (this.#closed) return;
    }
    if (Buffer.byteLength(this.#buffer) > this.#o.maxMessageBytes) this.#garbage(`wrote a message larger than ${this.#o.maxMessageBytes} bytes to stdout`);
  }

  #garbage(why: string): void {
    this.#o.log('stdio server stopped: protocol violation', { service: this.spec.service, pid: this.pid, reason: why });
    this.#close(why, true);
    this.kill();
  }

  send(msg: JSONRPCMessage): void {
    if (this.#closed || !this.#child.stdin.writable) return;
    this.#child.stdin.write(JSON.stringify(msg) + '\n');
  }

  /** SIGTERM to the process group, SIGKILL after a grace period if anything of it is still there. */
  kill(): void {
    const pid = this.#child.pid;
    this.#child.stdin.end();
    if (pid === undefined) return;
    const signal = (s: NodeJS.Signals) => {
      try {
        if (process.platform === 'win32') this.#child.kill(s);
        else process.kill(-pid, s);
      } catch {
        /* already gone */
      }
    };
    signal('SIGTERM');
    this.#killTimer ??= setTimeout(() => signal('SIGKILL'), KILL_GRACE_MS);
    this.#killTimer.unref();
  }

  #close(why: string, protocolError: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.onclose(why, protocolError);
  }
}
