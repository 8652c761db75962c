/**
 * The upload page: sign in (or not, when the server needs no token), pick tus or direct, drop files, watch them
 * go, and see every upload of yours with its state. Served by Freight at GET / (src/web/plugin.ts).
 */
import './style.css';
import { createUploader, type Mode } from './uploader.js';
import { createTransfers } from './transfers.js';
import { createUploadsList } from './uploads-list.js';
import {
  currentToken,
  installFetchWrapper,
  onRefused,
  setToken,
  takeTokenFromAddress,
  tokenSubject,
} from './session.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

installFetchWrapper();
takeTokenFromAddress();

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

function start(): void {
  const token = currentToken();
  $('who').textContent = token
    ? `Signed in as ${tokenSubject(token) ?? 'token holder'}`
    : 'No sign-in needed on this server';
  $<HTMLButtonElement>('sign-out').hidden = !token;
  show('session', true);
  show('sign-in', false);
  show('upload', true);
  show('uploads', true);
  notice.hidden = true;
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
  location.reload();
});

const first = await check();
if (first.ok) start();
else showSignIn(currentToken() ? first.message : undefined);
