import { Observable } from 'rxjs';
import type { EndpointHintUpdate } from '../../hints/endpoint-hints.js';
import type { Member, MembershipView } from '../membership.js';

/**
 * Endpoint hints from the member list: `{ endpoint, http3: 'deny' }` once a member's metadata
 * says it serves no HTTP/3 (so calls to it use HTTP/2 from the first one, with no race), and
 * `{ endpoint, reset: true }` (back to the configured hint) once no member at that endpoint says
 * so any more. Derived from the MembershipSource, not from the agent, so the factory can take it
 * (`TOKENS.EndpointHints`) while the agent takes the factory: no cycle. Completes with the view.
 *
 * Several members at one endpoint (a node restarted under a new id): the live ones (alive,
 * suspect) decide; if none is live, the last known ones do.
 */
export function membershipHints(view: MembershipView): Observable<EndpointHintUpdate> {
  return new Observable<EndpointHintUpdate>((subscriber) => {
    let denied = new Set<string>();
    const subscription = view.members$.subscribe({
      next: (members) => {
        const next = deniedEndpoints(members);
        for (const endpoint of next) if (!denied.has(endpoint)) subscriber.next({ endpoint, http3: 'deny' });
        for (const endpoint of denied) if (!next.has(endpoint)) subscriber.next({ endpoint, reset: true });
        denied = next;
      },
      error: (error: unknown) => subscriber.error(error),
      complete: () => subscriber.complete(),
    });
    return () => subscription.unsubscribe();
  });
}

function deniedEndpoints(members: readonly Member[]): Set<string> {
  const byEndpoint = new Map<string, Member[]>();
  for (const m of members) {
    const list = byEndpoint.get(m.metadata.endpoint);
    if (list === undefined) byEndpoint.set(m.metadata.endpoint, [m]);
    else list.push(m);
  }
  const denied = new Set<string>();
  for (const [endpoint, list] of byEndpoint) {
    const live = list.filter((m) => m.status === 'alive' || m.status === 'suspect');
    const deciding = live.length > 0 ? live : list;
    if (deciding.some((m) => !m.metadata.http3)) denied.add(endpoint);
  }
  return denied;
}
