// Calls a function of the mesh from the browser, the two ways a frontend does. Each answers what the page
// can see: { status, body } when the browser lets the page read the answer, { blocked } when it does not
// (a CORS refusal is a network error to the page: it never sees the status).
'use strict';

/** Plain fetch, with credentials as Space Cloud's client sends them. */
async function callWithFetch({ gateway, namespace, service, fn, params, token }) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const res = await fetch(`${gateway}/v1/api/${namespace}/functions/${service}/${fn}`, {
      method: 'POST',
      credentials: 'include',
      headers,
      body: JSON.stringify({ params }),
    });
    return { status: res.status, body: await res.json(), requestId: res.headers.get('x-request-id') };
  } catch (err) {
    return { blocked: String(err) };
  }
}

/** Space Cloud's client: the namespace in place of the project id, the gateway as its server. */
async function callWithSpaceApi({ gateway, namespace, service, fn, params, token }) {
  const api = new Space.API(namespace, gateway);
  if (token) api.setToken(token);
  try {
    const res = await api.call(service, fn, params, 5000);
    return { status: res.status, body: res.data };
  } catch (err) {
    return { blocked: String(err) };
  }
}

window.fnmeshWeb = { callWithFetch, callWithSpaceApi };

const $ = (id) => document.getElementById(id);
$('gateway').value = new URLSearchParams(location.search).get('gateway') || 'http://127.0.0.1:8080';
$('call').addEventListener('submit', async (event) => {
  event.preventDefault();
  let params;
  try {
    params = JSON.parse($('params').value || 'null');
  } catch (err) {
    $('out').textContent = `params is not JSON: ${err.message}`;
    return;
  }
  const call = {
    gateway: $('gateway').value.replace(/\/+$/, ''),
    namespace: $('namespace').value,
    service: $('service').value,
    fn: $('function').value,
    params,
    token: $('token').value.trim(),
  };
  const client = event.submitter && event.submitter.value === 'space-api' ? callWithSpaceApi : callWithFetch;
  $('out').textContent = 'calling…';
  const answer = await client(call);
  $('out').textContent = answer.blocked
    ? `the browser blocked the call (is this page's origin, ${location.origin}, allowed by the gateway's FNMESH_CORS_ORIGINS?): ${answer.blocked}`
    : `${answer.status}\n${JSON.stringify(answer.body, null, 2)}`;
});
