import type { Observable } from 'rxjs';
import type { Member, MemberMetadata, MemberStatus } from '../../../../src/controlplane/membership.js';

/** A member for hand-fed member lists: node `id` on `https://10.0.0.<n>:7001` unless `endpoint` says otherwise. */
export function member(id: string, services: readonly string[], extra: { status?: MemberStatus; incarnation?: number; endpoint?: string; http3?: boolean; region?: string } = {}): Member {
  const n = Number(/\d+/.exec(id)?.[0] ?? '9');
  const metadata: MemberMetadata = {
    nodeId: id,
    role: 'worker',
    cluster: 'test',
    region: extra.region ?? 'eu-1',
    version: '1.0.0',
    endpoint: extra.endpoint ?? `https://10.0.0.${n}:7001`,
    http3: extra.http3 ?? true,
    services,
  };
  return { metadata, status: extra.status ?? 'alive', incarnation: extra.incarnation ?? 1 };
}

/** Records an Observable's emissions and completion. */
export function record<T>(source: Observable<T>): { values: T[]; completed: () => boolean; error: () => unknown; unsubscribe(): void } {
  const values: T[] = [];
  let completed = false;
  let failure: unknown;
  const subscription = source.subscribe({
    next: (value) => values.push(value),
    complete: () => {
      completed = true;
    },
    error: (error) => {
      failure = error;
    },
  });
  return { values, completed: () => completed, error: () => failure, unsubscribe: () => subscription.unsubscribe() };
}
