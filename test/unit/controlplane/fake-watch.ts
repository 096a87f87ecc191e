/**
 * For the watch clients' unit tests (DiscoveryClient, LeadershipClient): one server-stream call a
 * fake factory took. The test feeds it messages, a failure or its end; the stream ends with
 * CANCELLED once the call's signal aborts, as a real one does.
 */
import { RpcError } from '../../../src/errors.js';

type Event<M> = { kind: 'message'; value: M } | { kind: 'fail'; error: unknown } | { kind: 'end' };

export class FakeWatch<Request, Message> {
  readonly #events: Event<Message>[] = [];
  #wake: (() => void) | undefined;

  constructor(
    readonly request: Request,
    readonly target: Record<string, unknown>,
  ) {
    (target.signal as AbortSignal).addEventListener('abort', () => this.#notify());
  }

  get aborted(): boolean {
    return (this.target.signal as AbortSignal).aborted;
  }

  message(value: Message): void {
    this.#push({ kind: 'message', value });
  }

  fail(error: unknown): void {
    this.#push({ kind: 'fail', error });
  }

  end(): void {
    this.#push({ kind: 'end' });
  }

  async *stream(): AsyncGenerator<Message> {
    for (;;) {
      if (this.aborted) throw new RpcError(1, 'CANCELLED', 'cancelled by the caller', { endpoint: 'remote', protocol: 'h2' });
      const event = this.#events.shift();
      if (event === undefined) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        continue;
      }
      if (event.kind === 'end') return;
      if (event.kind === 'fail') throw event.error;
      yield event.value;
    }
  }

  #push(event: Event<Message>): void {
    this.#events.push(event);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Resolves once `check` holds, looking again after each turn of the event loop (no timers). */
export async function until(check: () => boolean): Promise<void> {
  for (let turns = 0; !check(); turns++) {
    if (turns > 10_000) throw new Error('condition never held');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
