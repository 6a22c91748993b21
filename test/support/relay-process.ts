import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root: the child runs the relay's CLI from there, as `npm start` does. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How long a (re)start may take before the helper gives up: tsx compiles on each start. */
const READY_TIMEOUT_MS = 60_000;

/**
 * The relay as a separate process (`server/src/cli.ts start`), so a test can `kill -9` it and
 * start it again on the same port and database, as an operator's supervisor would.
 */
export class RelayProcess {
  readonly port: number;
  readonly url: string;
  readonly #env: Record<string, string>;
  #child: ChildProcess | undefined;
  /** The last lines of the relay's stdout/stderr (JSON logs), for failure messages. */
  readonly output: string[] = [];
  /** Log lines, across all restarts, whose `event` is one of these are kept in {@link events}. */
  readonly #watch: Set<string>;
  /** Watched log events seen, across all restarts. */
  readonly events: { event: string; at: number; line: string }[] = [];
  /** Completed starts (the first one included). */
  starts = 0;

  /**
   * @param port a fixed port (restarts reuse it, so clients reconnect to the same URL)
   * @param env the relay's environment (`DATABASE_URL` etc.); `BACKCHANNEL_PORT` is set here
   * @param watch log `event` names to record in {@link events}
   */
  constructor(port: number, env: Record<string, string>, watch: string[] = []) {
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.#env = { BACKCHANNEL_LOG_LEVEL: 'info', ...env, BACKCHANNEL_PORT: String(port), BACKCHANNEL_HOST: '127.0.0.1' };
    this.#watch = new Set(watch);
  }

  /** The running child's pid, if any. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the relay and resolves once it printed its `ready` line. */
  async start(): Promise<void> {
    if (this.#child !== undefined) throw new Error('relay process already running');
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'server/src/cli.ts', 'start'], {
      cwd: ROOT,
      env: { ...process.env, ...this.#env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`relay not ready within ${READY_TIMEOUT_MS} ms:\n${this.output.slice(-20).join('\n')}`)), READY_TIMEOUT_MS);
      let buffered = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          this.#line(line);
          if (line.startsWith('{"event":"ready"')) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      child.stderr?.on('data', (chunk: Buffer) => this.#line(chunk.toString().trimEnd()));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`relay exited before ready (code ${code}, signal ${signal}):\n${this.output.slice(-20).join('\n')}`));
      });
    });
    await ready;
    this.starts++;
  }

  /** `kill -9`: no shutdown, no flush, open sockets reset by the kernel. Resolves once it is gone. */
  async kill9(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    this.#child = undefined;
  }

  /** SIGTERM (graceful stop); resolves with the exit code. */
  async stop(): Promise<number | null> {
    const child = this.#child;
    if (child === undefined) return null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await exited;
    this.#child = undefined;
    return code;
  }

  /** Kills -9 and starts again on the same port and database. */
  async restart(): Promise<void> {
    await this.kill9();
    await this.start();
  }

  #line(line: string): void {
    if (line === '') return;
    this.output.push(line);
    if (this.output.length > 200) this.output.shift();
    if (this.#watch.size === 0 || !line.startsWith('{')) return;
    try {
      const parsed = JSON.parse(line) as { event?: unknown };
      if (typeof parsed.event === 'string' && this.#watch.has(parsed.event)) this.events.push({ event: parsed.event, at: Date.now(), line });
    } catch {
      // not a log line
    }
  }
}
