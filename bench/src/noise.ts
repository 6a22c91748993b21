import { spawn, type ChildProcess } from 'node:child_process';

/**
 * `--noise`: a CPU-burning neighbour, one process spinning on one core for the whole run, so
 * that the noisy-machine case (a cloud VM's other tenants, other test suites) is reproducible.
 */
export class Noise {
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /** Starts the neighbour. */
  static start(): Noise {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    return new Noise(child);
  }

  /** Its pid, for CPU sampling. */
  get pid(): number {
    return this.#child.pid!;
  }

  /** Stops the neighbour; resolves when it has exited. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGKILL');
    await exited;
  }
}
