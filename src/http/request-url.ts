// What the plumbing reads of a request's URL, safely: Bun hands on a request whose Host header is
// missing or invalid with a relative URL that `new URL` refuses, and a path must never carry its query
// (it may hold `?api_key=`) into a log line.

/** Whether the request has an absolute URL (a valid Host): the app serves nothing else. */
export function hasValidUrl(request: Request): boolean {
  return URL.canParse(request.url);
}

/** The request's path without its query, whatever its URL looks like; never throws. */
export function pathOf(request: Request): string {
  const url = request.url;
  const start = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url.indexOf("/", url.indexOf("//") + 2) : url.indexOf("/");
  if (start === -1) return "/";
  const end = url.slice(start).search(/[?#]/);
  return (end === -1 ? url.slice(start) : url.slice(start, start + end)).slice(0, 200);
}
