/**
 * A minimal OpenTelemetry TracerProvider that keeps the attributes and events of the spans the
 * factory starts, so the CLI can print why a call did not use HTTP/3
 * (`omnirelay.protocol.reason`, `omnirelay.fallback.reason`) without an SDK.
 */
import {
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type Span,
  type SpanContext,
  type SpanStatus,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

export interface RecordedSpan {
  readonly name: string;
  readonly attributes: Record<string, AttributeValue>;
  readonly events: { readonly name: string; readonly attributes: Attributes }[];
  status: SpanStatus | undefined;
  ended: boolean;
}

const INVALID_CONTEXT: SpanContext = { traceId: '00000000000000000000000000000000', spanId: '0000000000000000', traceFlags: TraceFlags.NONE };

class RecordingSpan implements Span {
  constructor(readonly record: RecordedSpan) {}
  spanContext(): SpanContext {
    return INVALID_CONTEXT;
  }
  setAttribute(key: string, value: AttributeValue): this {
    this.record.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    for (const [key, value] of Object.entries(attributes)) if (value !== undefined) this.record.attributes[key] = value;
    return this;
  }
  addEvent(name: string, attributes?: Attributes | number | Date): this {
    this.record.events.push({ name, attributes: typeof attributes === 'object' && !(attributes instanceof Date) ? attributes : {} });
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.record.status = status;
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.record.ended = true;
  }
  isRecording(): boolean {
    return !this.record.ended;
  }
  recordException(): void {}
}

/** Records every span; {@link SpanRecorder.spans} lists them oldest first (capped at `limit`, oldest dropped). */
export class SpanRecorder implements TracerProvider {
  readonly spans: RecordedSpan[] = [];
  readonly #tracer: Tracer;

  constructor(private readonly limit = 1000) {
    const start = (name: string, options?: { attributes?: Attributes }): Span => {
      const record: RecordedSpan = { name, attributes: {}, events: [], status: undefined, ended: false };
      const span = new RecordingSpan(record);
      if (options?.attributes !== undefined) span.setAttributes(options.attributes);
      this.spans.push(record);
      if (this.spans.length > this.limit) this.spans.shift();
      return span;
    };
    this.#tracer = {
      startSpan: start,
      // The factory only uses startSpan; the active-span form runs `fn` with the span, no context switch.
      startActiveSpan: ((name: string, ...rest: unknown[]) => {
        const fn = rest.at(-1) as (span: Span) => unknown;
        const options = rest.length > 1 && typeof rest[0] === 'object' ? (rest[0] as { attributes?: Attributes }) : undefined;
        return fn(start(name, options));
      }),
    };
  }

  getTracer(): Tracer {
    return this.#tracer;
  }

  /** The newest span, if any. */
  last(): RecordedSpan | undefined {
    return this.spans.at(-1);
  }
}
