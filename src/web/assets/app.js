// Tocsin's only browser script (served as /assets/app.js; the CSP allows no inline script).
// Forms marked data-api are sent to the JSON API with the session's CSRF token; everything else is plain HTML.
// Field conventions: name="a.b" nests; data-type="number|boolean|json|lines" converts; a multiple <select> or
// several checkboxes with one name give an array; an empty optional field is left out (data-keep-empty keeps it).

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';

function setPath(obj, name, value) {
  const parts = name.split('.');
  let o = obj;
  for (let i = 0; i < parts.length - 1; i++) o = o[parts[i]] ??= {};
  o[parts[parts.length - 1]] = value;
}

function convert(el, raw) {
  const t = el.dataset.type;
  if (t === 'number') return raw === '' ? undefined : Number(raw);
  if (t === 'boolean') return raw === 'true';
  if (t === 'json') return raw === '' ? undefined : JSON.parse(raw);
  if (t === 'lines') return raw.split('\n').map((s) => s.trim()).filter((s) => s !== '');
  return raw;
}

export function formToJson(form) {
  const out = {};
  const arrays = new Map();
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.type === 'submit' || el.type === 'button') continue;
    if (el.type === 'checkbox') {
      if (el.dataset.type === 'boolean') { setPath(out, el.name, el.checked); continue; }
      if (!arrays.has(el.name)) arrays.set(el.name, []);
      if (el.checked) arrays.get(el.name).push(convert(el, el.value));
      continue;
    }
    if (el.type === 'radio') { if (el.checked) setPath(out, el.name, convert(el, el.value)); continue; }
    if (el.tagName === 'SELECT' && el.multiple) {
      setPath(out, el.name, [...el.selectedOptions].map((o) => convert(el, o.value)));
      continue;
    }
    const v = convert(el, el.value);
    if (v === undefined || (v === '' && !('keepEmpty' in el.dataset))) continue;
    setPath(out, el.name, v);
  }
  for (const [name, values] of arrays) setPath(out, name, values);
  return out;
}

function showError(form, message) {
  let box = form.querySelector('[data-error]');
  if (!box) {
    box = document.createElement('p');
    box.setAttribute('data-error', '');
    box.className = 'error';
    box.setAttribute('role', 'alert');
    form.append(box);
  }
  box.textContent = message; // textContent: an error message is data, never markup
}

function sameSite(next) {
  if (!next.startsWith('/')) return null;
  try {
    const u = new URL(next, location.origin);
    return u.origin === location.origin ? u.pathname + u.search + u.hash : null;
  } catch {
    return null;
  }
}

async function submit(form) {
  const method = (form.dataset.method || 'POST').toUpperCase();
  const body = method === 'GET' || method === 'DELETE' ? undefined : JSON.stringify(formToJson(form));
  const headers = { 'x-csrf-token': csrf() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const button = form.querySelector('[type="submit"]');
  if (button) button.disabled = true;
  try {
    const res = await fetch(form.dataset.api, { method, headers, body, credentials: 'same-origin' });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    if (!res.ok) {
      showError(form, json?.error ? `${json.error.message} (${json.error.code})` : `request failed: HTTP ${res.status}`);
      return;
    }
    const out = form.querySelector('[data-result]');
    if (out) out.textContent = typeof json === 'object' && json !== null && 'message' in json ? String(json.message) : JSON.stringify(json, null, 2);
    let next = form.dataset.redirect;
    if (next === '@next') next = new URLSearchParams(location.search).get('next') || '/';
    if (next && json && typeof json === 'object') next = next.replace(/\{(\w+)\}/g, (_m, k) => encodeURIComponent(String(json[k] ?? '')));
    // Only same-site paths: a crafted ?next= must not send the user elsewhere. Browsers read a backslash as a slash
    // ('/' + backslash + 'evil.example' is another site): resolve it as the browser will and compare origins.
    if (next === 'none') return;
    if (next) location.assign(sameSite(next) ?? '/');
    else if (!out) location.reload();
  } catch (e) {
    showError(form, `request failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (button) button.disabled = false;
  }
}

document.addEventListener('submit', (ev) => {
  const form = ev.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  ev.preventDefault();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  void submit(form);
});
