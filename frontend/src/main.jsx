import { StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import '@xyflow/react/dist/style.css';
import './builder.css';
import WorkflowGraph from './WorkflowGraph.jsx';
import Editor from './Editor.jsx';

// The bundle is downloaded, parsed and starts running (bench/builder_load.py reads this mark).
performance.mark('builder:start');

const MOUNT_ID = 'workflow-builder';

export class ApiError extends Error {
  constructor(status, detail) {
    super(status ? `${status}: ${detail}` : detail);
    this.status = status;
    this.detail = detail;
  }
}

async function fetchWorkflow(url) {
  let response;
  try {
    response = await fetch(url, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
  } catch (err) {
    throw new ApiError(null, `Network error: ${err?.message || err}`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    let detail = response.statusText || 'Request failed';
    if (body && typeof body === 'object' && body.detail) detail = String(body.detail);
    else if (body && typeof body === 'object') detail = JSON.stringify(body);
    else if (text && !/^\s*</.test(text)) detail = text.slice(0, 300);
    throw new ApiError(`${response.status} ${response.statusText}`.trim(), detail);
  }
  if (!body || typeof body !== 'object') {
    throw new ApiError(`${response.status}`, 'Response was not a JSON workflow document');
  }
  return body;
}

function Builder({ apiUrl, element }) {
  const [state, setState] = useState({ status: 'loading' });

  useEffect(() => {
    let cancelled = false;
    element.dataset.state = 'loading';
    if (!apiUrl) {
      setState({ status: 'error', error: new ApiError(null, 'Missing data-api-url on #workflow-builder') });
      return undefined;
    }
    fetchWorkflow(apiUrl).then(
      (doc) => !cancelled && setState({ status: 'ok', doc }),
      (error) => !cancelled && setState({ status: 'error', error }),
    );
    return () => {
      cancelled = true;
    };
  }, [apiUrl, element]);

  useEffect(() => {
    if (state.status === 'error') element.dataset.state = 'error';
  }, [state.status, element]);

  const onReady = useCallback(() => {
    element.dataset.state = 'ready';
    element.dataset.ready = 'true';
  }, [element]);

  if (state.status === 'loading') {
    return <div className="wfb-message">Loading workflow…</div>;
  }
  if (state.status === 'error') {
    const { status, detail, message } = state.error;
    return (
      <div className="wfb-message wfb-message--error" role="alert" data-testid="builder-error">
        <strong>Could not load the workflow{status ? ` (${status})` : ''}.</strong>
        <div>{detail || message}</div>
      </div>
    );
  }
  return <WorkflowGraph key={apiUrl} doc={state.doc} onReady={onReady} />;
}

export function mount(element = document.getElementById(MOUNT_ID)) {
  if (!element || element.dataset.mounted) return null;
  element.dataset.mounted = 'true';
  element.classList.add('wfb-root');
  const root = createRoot(element);
  if (element.dataset.mode === 'edit') {
    const config = JSON.parse(document.getElementById(element.dataset.config).textContent);
    root.render(
      <StrictMode>
        <Editor config={config} csrf={element.dataset.csrf} element={element} />
      </StrictMode>,
    );
    return root;
  }
  root.render(
    <StrictMode>
      <Builder apiUrl={element.dataset.apiUrl} element={element} />
    </StrictMode>,
  );
  return root;
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', () => mount());
} else {
  mount();
}
