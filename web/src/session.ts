/**
 * Who the page acts for. A token comes from `?token=` (then removed from the address bar, so it is not
 * bookmarked or shared) or from the sign-in form, and is kept in sessionStorage: for this tab only, gone when it
 * closes. It is sent on every request to this page's own origin, and to no other: Uppy's Companion calls (plain
 * fetch, which has no header option in @uppy/aws-s3 6) get it from a fetch wrapper that adds it for same-origin
 * URLs only, so the presigned S3 URLs never see it.
 */
const STORAGE_KEY = 'freight.token';

let token: string | undefined = sessionStorage.getItem(STORAGE_KEY) ?? undefined;
const refusalListeners: Array<(message: string) => void> = [];
const goneListeners: Array<(url: URL, status: number) => void> = [];

export function currentToken(): string | undefined {
  return token;
}

export function setToken(value: string | undefined): void {
  token = value?.trim() || undefined;
  if (token) sessionStorage.setItem(STORAGE_KEY, token);
  else sessionStorage.removeItem(STORAGE_KEY);
}

/** A `?token=` in the address: taken, stored, and removed from the address bar. */
export function takeTokenFromAddress(): void {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given === null) return;
  setToken(given);
  url.searchParams.delete('token');
  history.replaceState(null, '', url);
}

/** The Authorization header for this server, when there is a token. */
export function authHeaders(): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Called when this server refuses the token (401), with its message. */
export function onRefused(listener: (message: string) => void): void {
  refusalListeners.push(listener);
}

/** Called when this server says an upload is gone (404, 410), with the request's URL. */
export function onGone(listener: (url: URL, status: number) => void): void {
  goneListeners.push(listener);
}

const isOwnOrigin = (url: URL) => url.origin === location.origin;

/** Wraps window.fetch once: same-origin requests get the token; every other request is left exactly as it was. */
export function installFetchWrapper(): void {
  const original = window.fetch.bind(window);
  window.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (!isOwnOrigin(url)) return original(input, init);
    const request = new Request(input, init);
    if (token && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${token}`);
    const response = await original(request);
    if (response.status === 401) {
      const message = await response
        .clone()
        .json()
        .then(
          (body: { message?: string }) => body.message ?? 'token refused',
          () => 'token refused',
        );
      for (const listener of refusalListeners) listener(message);
    } else if (response.status === 404 || response.status === 410) {
      for (const listener of goneListeners) listener(url, response.status);
    }
    return response;
  };
}

/** The user a token names (its `sub`), for display only: the server is what checks it. */
export function tokenSubject(value: string | undefined): string | undefined {
  const payload = value?.split('.')[1];
  if (!payload) return undefined;
  try {
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
    return typeof json.sub === 'string' ? json.sub : undefined;
  } catch {
    return undefined;
  }
}
