// Same-origin JSON calls with the session and CSRF token; errors carry the server's words.
export class RequestError extends Error {}

function describe(status, body) {
  if (body && typeof body === 'object') {
    if (body.detail) return String(body.detail);
    if (Array.isArray(body.errors)) return body.errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('; ');
    return Object.entries(body)
      .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : v}`)
      .join('; ');
  }
  return `The server answered ${status}.`;
}

export async function call(url, { method = 'GET', body, csrf } = {}) {
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', ...(csrf ? { 'X-CSRFToken': csrf } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new RequestError(`Could not reach the server: ${err?.message || err}`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new RequestError(describe(response.status, data));
  return data;
}
