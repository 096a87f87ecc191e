import type { CallContext } from './context.js';

export type UnaryNext = (context: CallContext, request: unknown) => Promise<unknown>;
export type OnewayNext = (context: CallContext, request: unknown) => Promise<void>;
export type ServerStreamNext = (context: CallContext, request: unknown) => AsyncIterable<unknown>;

/**
 * A middleware wraps the calls of the kinds it implements and passes the others through.
 * The same shape serves both chains: inbound middleware runs between the transport and the
 * procedure's handler, outbound middleware between the caller and the outbound. In a list,
 * the first middleware is the outermost: it sees the call first and the result last.
 * A middleware may change the request, add outbound metadata, return without calling
 * `next` (e.g. reject), or change the result.
 */
export interface Middleware {
  /** For diagnostics. */
  readonly name?: string | undefined;
  unary?(context: CallContext, request: unknown, next: UnaryNext): Promise<unknown>;
  oneway?(context: CallContext, request: unknown, next: OnewayNext): Promise<void>;
  serverStream?(context: CallContext, request: unknown, next: ServerStreamNext): AsyncIterable<unknown>;
}

/** The three chains of one middleware list, built once around the given terminals. */
export interface Chains {
  readonly unary: UnaryNext;
  readonly oneway: OnewayNext;
  readonly serverStream: ServerStreamNext;
}

export function buildChains(middleware: readonly Middleware[], terminal: Chains): Chains {
  let unary = terminal.unary;
  let oneway = terminal.oneway;
  let serverStream = terminal.serverStream;
  for (let i = middleware.length - 1; i >= 0; i--) {
    const m = middleware[i];
    if (m === undefined) continue;
    const u = m.unary?.bind(m);
    const o = m.oneway?.bind(m);
    const s = m.serverStream?.bind(m);
    if (u !== undefined) {
      const inner = unary;
      unary = (context, request) => u(context, request, inner);
    }
    if (o !== undefined) {
      const inner = oneway;
      oneway = (context, request) => o(context, request, inner);
    }
    if (s !== undefined) {
      const inner = serverStream;
      serverStream = (context, request) => s(context, request, inner);
    }
  }
  return { unary, oneway, serverStream };
}
