// The path as the access line logs it.

const MAX_LOGGED = 200;

/**
 * An address a caller put in the path (an unknown route, a mistake) is
 * masked like everywhere else in the log, and the length is bounded. The
 * path is the caller's, as long as the header limits allow (tens of KB over
 * HTTP/2), and this runs for every request: it looks at each segment once
 * (a backtracking pattern over the whole path held the event loop for
 * seconds on a long one), and masks before it cuts, so no part of an
 * address past the cut is left behind.
 */
export function loggablePath(pathname: string): string {
  let masked = pathname;
  if (pathname.includes("@") || /%40/i.test(pathname)) {
    masked = pathname
      .split("/")
      .map((segment) => {
        const end = Math.max(segment.lastIndexOf("@") + 1, lastPercent40(segment));
        return end > 0 ? `***@${segment.slice(end)}` : segment;
      })
      .join("/");
  }
  return masked.length > MAX_LOGGED ? `${masked.slice(0, MAX_LOGGED)}…` : masked;
}

/** Where the last "%40" (any case) in a segment ends, or 0. */
function lastPercent40(segment: string): number {
  const at = segment.toLowerCase().lastIndexOf("%40");
  return at < 0 ? 0 : at + 3;
}
