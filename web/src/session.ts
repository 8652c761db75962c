/**
 * Who the page acts for. A token comes from `?token=` (then removed from the address bar, so it is not
 * bookmarked or shared) or from the sign-in form, and is kept in sessionStorage: for this tab only, gone when it
 * closes. It is sent on every request to this page's own origin, and to no other: Uppy's Companion calls (plain
 * fetch, which has no header option in @uppy/aws-s3 6) get it from a fetch wrapper that adds it for same-origin
 * URLs only, so the presigned S3 URLs never see it.
 *
 * A `?token=` link is never obeyed blindly: anyone can send a link with their own token, and a page that
 * switched to it would put the victim's uploads in the sender's account (a login CSRF). The page remembers who
 * was last signed in on this browser (the user's name only, in localStorage, never a token), and a link for
 * someone else is only taken after the person says so (main.ts).
 */
const STORAGE_KEY = 'freight.token';
const LAST_USER_KEY = 'freight.lastUser';

let token: string | undefined = sessionStorage.getItem(STORAGE_KEY) ?? undefined;
/** window.fetch as it was before the wrapper: for checking a token without adding (or reporting on) this tab's. */
const unwrappedFetch = window.fetch.bind(window);
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

/** A `?token=` in the address, removed from the address bar at once; the caller decides whether to take it. */
export function takeTokenFromAddress(): string | undefined {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given === null) return undefined;
  url.searchParams.delete('token');
  history.replaceState(null, '', url);
  return given.trim() || undefined;
}

/** Who was last signed in on this browser (any tab), by name; undefined after a sign-out. */
export function lastUser(): string | undefined {
  return localStorage.getItem(LAST_USER_KEY) ?? undefined;
}

export function rememberUser(user: string | undefined): void {
  if (user) localStorage.setItem(LAST_USER_KEY, user);
  else localStorage.removeItem(LAST_USER_KEY);
}

/** Whether this server accepts `candidate` (not this tab's token), and its reason if not. */
export async function checkToken(candidate: string): Promise<{ ok: true } | { ok: false; message: string }> {
  const res = await unwrappedFetch('/api/uploads?limit=1', { headers: { Authorization: `Bearer ${candidate}` } });
  if (res.ok) return { ok: true };
  const body = (await res.json().catch(() => ({}))) as { message?: string };
  return { ok: false, message: body.message ?? `${res.status}` };
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
  const original = unwrappedFetch;
  window.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (!isOwnOrigin(url)) return original(input, init);
    const request = new Request(input, init);
    if (token && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${token}`);
    const response = await original(request);
    // A refusal of the token, not the 401 of a visitor who has not signed in yet (the sign-in form is for that).
    if (response.status === 401 && request.headers.has('Authorization')) {
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
