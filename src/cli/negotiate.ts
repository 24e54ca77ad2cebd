// Content negotiation for /metrics (RFC 9110 §12.5.1): the Accept header's media ranges with their
// q-values. Each format we offer takes the q of the most specific range that matches it (type/subtype
// with a matching version, then type/subtype, then type/*, then */*); q=0 refuses it. The highest q
// wins, ties go to the first offer (the classic text format, what Prometheus reads everywhere).

export interface Offer {
  /** e.g. 'text/plain' */
  mediaType: string;
  /** The format version the exposition has (the `version` parameter). */
  version: string;
}

interface MediaRange {
  type: string;
  subtype: string;
  version: string | undefined;
  q: number;
}

function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of header.split(',')) {
    const [range, ...params] = part.split(';').map((s) => s.trim());
    const [type, subtype] = (range ?? '').toLowerCase().split('/');
    if (!type || !subtype) continue; // not a media range: ignored, as RFC 9110 lets a server do
    let q = 1;
    let version: string | undefined;
    for (const param of params) {
      const eq = param.indexOf('=');
      if (eq < 0) continue;
      const name = param.slice(0, eq).trim().toLowerCase();
      const value = param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (name === 'q') {
        const parsed = Number(value);
        q = /^\s*(0(\.\d{0,3})?|1(\.0{0,3})?)\s*$/.test(value) ? parsed : 0; // a malformed q refuses
      } else if (name === 'version') {
        version = value;
      }
    }
    ranges.push({ type, subtype, version, q });
  }
  return ranges;
}

/** How specific `range` is for `offer` (higher wins), or -1 when it does not match. */
function specificity(range: MediaRange, offer: Offer): number {
  const [type, subtype] = offer.mediaType.toLowerCase().split('/');
  if (range.type === '*' && range.subtype === '*') return 0;
  if (range.type !== type) return -1;
  if (range.subtype === '*') return 1;
  if (range.subtype !== subtype) return -1;
  if (range.version === undefined) return 2;
  return range.version === offer.version ? 3 : -1;
}

/** The q the header gives `offer`: that of its most specific matching range; null when none matches. */
function quality(ranges: readonly MediaRange[], offer: Offer): number | null {
  let match: { q: number; specificity: number } | null = null;
  for (const range of ranges) {
    const s = specificity(range, offer);
    if (s >= 0 && (match === null || s > match.specificity)) match = { q: range.q, specificity: s };
  }
  return match?.q ?? null;
}

/**
 * The offer to serve for this Accept header: the one with the highest q above 0; the first offer when
 * there is no header; null when every offer is refused or matched by nothing (then the caller decides).
 */
export function negotiate<T extends Offer>(accept: string | undefined, offers: readonly T[]): T | null {
  if (accept === undefined || accept.trim() === '') return offers[0] ?? null;
  const ranges = parseAccept(accept);
  let best: { offer: T; q: number } | null = null;
  for (const offer of offers) {
    const q = quality(ranges, offer) ?? 0;
    if (q > 0 && (best === null || q > best.q)) best = { offer, q };
  }
  return best?.offer ?? null;
}

/** Whether the header refuses `offer` outright (its most specific matching range has q=0). */
export function refuses(accept: string | undefined, offer: Offer): boolean {
  return accept !== undefined && quality(parseAccept(accept), offer) === 0;
}
