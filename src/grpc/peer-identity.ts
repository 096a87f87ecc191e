/**
 * The identity a peer's certificate carries, as both hosts report it to handlers
 * (`clientIdentity`) and the dispatcher puts it on its context: the common name of the
 * certificate's subject, or '' without one.
 */
export function commonNameOf(subject: string | undefined): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(subject ?? '')?.[1] ?? '';
}
