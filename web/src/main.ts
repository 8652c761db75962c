/**
 * The upload page: sign in (or not, when the server needs no token), pick tus or direct, drop files, watch them
 * go, and see every upload of yours with its state. Served by Freight at GET / (src/web/plugin.ts).
 */
import './style.css';
import { createUploader, type Mode } from './uploader.js';
import { createTransfers } from './transfers.js';
import { createUploadsList } from './uploads-list.js';
import {
  checkToken,
  currentToken,
  installFetchWrapper,
  lastUser,
  onRefused,
  rememberUser,
  setToken,
  takeTokenFromAddress,
  tokenSubject,
} from './session.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

installFetchWrapper();
// Out of the address bar at once (history, bookmarks, a shared screen), whatever is decided about it below.
const offered = takeTokenFromAddress();

const notice = $<HTMLParagraphElement>('notice');
const show = (id: string, visible: boolean) => {
  $(id).hidden = !visible;
};

onRefused((message) => {
  notice.textContent = `The server refused your token (${message}). Sign in again; uploads resume once you do.`;
  notice.hidden = false;
  showSignIn(message);
});

function showSignIn(error?: string): void {
  show('sign-in', true);
  $('sign-in-error').textContent = error ? `Not signed in: ${error}` : '';
  $<HTMLInputElement>('token').focus();
}

/** Asks the server who we are: 200 means this token (or none, with AUTH_DISABLED) is accepted. */
async function check(): Promise<{ ok: true } | { ok: false; message: string }> {
  const res = await fetch('/api/uploads?limit=1');
  if (res.ok) return { ok: true };
  const body = (await res.json().catch(() => ({}))) as { message?: string };
  return { ok: false, message: body.message ?? `${res.status}` };
}

let started = false;

/**
 * Whether to take a `?token=` link's token. Taken as before when nobody was signed in on this browser, or when it
 * is the same user's (a fresh token). For another user, the person is asked first, seeing both names; declining
 * keeps the session as it was. A link whose token the server refuses changes nothing for a signed-in person.
 */
async function considerLink(token: string): Promise<void> {
  const inTab = currentToken();
  const previous = (inTab ? tokenSubject(inTab) : undefined) ?? lastUser();
  const linked = tokenSubject(token);
  if (previous === undefined || linked === previous) return setToken(token);
  const verdict = await checkToken(token);
  if (!verdict.ok) {
    // Nobody signed in here: as any refused token, the sign-in form says why.
    if (!inTab) return setToken(token);
    linkNote = `The link you opened was not used: the server refused its token (${verdict.message}).`;
    return;
  }
  if (await askToSwitch(previous, linked ?? 'another user', inTab !== undefined)) setToken(token);
}

/** Shows who the person is (or was) signed in as and who the link is for; resolves with their choice. */
function askToSwitch(previous: string, linked: string, signedIn: boolean): Promise<boolean> {
  const section = $('switch');
  $('switch-text').textContent = signedIn
    ? `You are signed in as ${previous}. The link you opened would sign you in as ${linked} instead, and what you upload from then on would go to ${linked}'s account.`
    : `This browser was last signed in as ${previous}. The link you opened would sign you in as ${linked}, and what you upload would go to ${linked}'s account.`;
  const keep = $<HTMLButtonElement>('switch-keep');
  const accept = $<HTMLButtonElement>('switch-accept');
  keep.textContent = signedIn ? `Stay signed in as ${previous}` : 'Stay signed out';
  accept.textContent = `Sign in as ${linked}`;
  section.hidden = false;
  keep.focus();
  return new Promise((resolve) => {
    const choose = (switching: boolean) => () => {
      section.hidden = true;
      keep.onclick = accept.onclick = null;
      resolve(switching);
    };
    keep.onclick = choose(false);
    accept.onclick = choose(true);
  });
}

/** Said once the page has started: what became of a link that was not used. */
let linkNote: string | undefined;

function start(): void {
  const token = currentToken();
  const user = token ? tokenSubject(token) : undefined;
  if (user) rememberUser(user);
  $('who').textContent = token ? `Signed in as ${user ?? 'token holder'}` : 'No sign-in needed on this server';
  $<HTMLButtonElement>('sign-out').hidden = !token;
  show('session', true);
  show('sign-in', false);
  show('upload', true);
  show('uploads', true);
  notice.hidden = true;
  $('link-note').textContent = linkNote ?? '';
  show('link-note', linkNote !== undefined);
  if (started) return;
  started = true;

  const transfersList = $<HTMLUListElement>('transfers');
  const uploader = createUploader({
    target: $('dashboard'),
    user: () => tokenSubject(currentToken()) ?? 'anonymous',
    onChange: () => {
      transfers.render();
      lockMode();
    },
  });
  const transfers = createTransfers(transfersList, $('transfers-empty'), uploader.uppy);
  const uploads = createUploadsList(
    { rows: $('upload-rows'), status: $('uploads-status'), refresh: $('refresh') },
    () => uploader.busy(),
  );
  for (const event of ['upload', 'upload-success', 'upload-error', 'complete'] as const)
    uploader.uppy.on(event, () => uploads.poke());

  const radios = [...document.querySelectorAll<HTMLInputElement>('input[name="mode"]')];
  const note = $('mode-note');
  const lockMode = () => {
    const busy = uploader.busy();
    for (const radio of radios) radio.disabled = busy || radio.dataset.unavailable === 'true';
    note.textContent = busy
      ? 'The way files travel can change once the current uploads are done.'
      : (note.dataset.base ?? '');
  };
  for (const radio of radios) {
    radio.addEventListener('change', () => {
      if (radio.checked) uploader.setMode(radio.value as Mode);
    });
  }
  // Direct uploads need S3 behind Freight: a server on its local file store answers 501 there.
  void fetch('/s3/multipart/probe?key=probe').then((res) => {
    if (res.status !== 501) return;
    const direct = radios.find((radio) => radio.value === 'direct');
    if (direct) direct.dataset.unavailable = 'true';
    note.dataset.base = 'Straight to storage needs S3 behind this server; it stores files itself.';
    lockMode();
  });
  void uploads.refresh();
}

$<HTMLFormElement>('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  setToken($<HTMLInputElement>('token').value);
  const result = await check();
  if (result.ok) {
    $<HTMLInputElement>('token').value = '';
    start();
  } else {
    setToken(undefined);
    showSignIn(result.message);
  }
});

$('sign-out').addEventListener('click', () => {
  setToken(undefined);
  rememberUser(undefined);
  location.reload();
});

if (offered !== undefined) await considerLink(offered);
const first = await check();
if (first.ok) start();
else showSignIn(currentToken() ? first.message : undefined);
