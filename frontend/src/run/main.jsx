// The run page: live status, the run graph, the log viewer, actions, the approval card and the
// reports tab. One websocket (/ws/executions/<id>/?after=<seq>) replays the log from the last
// chunk seen and streams chunks and the run's state; it reconnects without losing a line.
import { StrictMode, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import '@xyflow/react/dist/style.css';
import './run.css';
import LogViewer from './LogViewer.jsx';
import RunGraph from './RunGraph.jsx';
import { Actions, ApprovalCard, Reports } from './Panels.jsx';
import { LogStore, elapsed, formatDuration } from './logModel.js';

function useRunSocket(config) {
  const store = useMemo(() => new LogStore(), []);
  const [version, setVersion] = useState(0);
  const [state, setState] = useState(config.state);
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    let socket;
    let ended = false; // an ended run still replays its log once, then the server closes
    let closed = false;
    let delay = 500;
    let frame = 0;
    const bump = () => {
      if (frame) return;
      // One render per frame however many chunks arrive: the replay of a long log stays smooth.
      frame = requestAnimationFrame(() => {
        frame = 0;
        setVersion(store.version);
      });
    };
    const connect = () => {
      const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
      socket = new WebSocket(`${scheme}://${window.location.host}${config.wsPath}?after=${store.lastSeq}`);
      socket.onopen = () => {
        delay = 500;
        setConnected(true);
      };
      socket.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.type === 'log') {
          if (store.addChunk(msg)) bump();
        } else if (msg.type === 'status') {
          const { type: _type, ...next } = msg;
          setState(next);
        } else if (msg.type === 'end') {
          ended = true;
          document.body.dataset.runEnded = msg.status;
          bump();
        }
      };
      socket.onclose = () => {
        setConnected(false);
        if (!ended && !closed) setTimeout(connect, (delay = Math.min(delay * 2, 5000)));
      };
    };
    connect();
    return () => {
      closed = true;
      socket?.close();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [config.wsPath, store]);

  return { store, version, state, connected };
}

function useNow(running) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!running) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [running]);
  return now;
}

function RunPage({ config, csrf }) {
  const { store, version, state, connected } = useRunSocket(config);
  const now = useNow(!state.ended);
  const [tab, setTab] = useState('log');
  const viewer = useRef(null);
  const wide = useMemo(() => window.matchMedia('(min-width: 760px)').matches, []);
  const openStage = useCallback((id) => {
    setTab('log');
    requestAnimationFrame(() => viewer.current?.showStage(id));
  }, []);
  const hasScan = state.stages.some((s) => s.kind === 'scan');

  return (
    <>
      <div className="wfr-head">
        <span className={`status status-${state.status}`} data-testid="run-status" id="run-status">
          {state.status_display}
        </span>{' '}
        <span className="wfr-muted" data-testid="run-duration">
          {formatDuration(elapsed(state, now))}
        </span>{' '}
        {state.reason && (
          <span className="wfr-muted" id="run-reason">
            {state.reason}
          </span>
        )}
        {state.queue && (
          <span className="wfr-muted" id="run-queue" data-testid="run-queue">
            {' '}
            · Queued, position {state.queue.position}: {state.queue.reason}
          </span>
        )}
        {!connected && !state.ended && <span className="wfr-muted"> · reconnecting…</span>}
      </div>
      <p className="wfr-muted wfr-meta">
        {config.trigger}
        {config.triggeredBy && ` by ${config.triggeredBy}`}
        {config.rerunOf && (
          <>
            {' '}
            of <a href={config.rerunOf.url}>#{config.rerunOf.number}</a>
          </>
        )}{' '}
        · <span data-testid="run-ref">{state.ref_name}</span>
        {state.commit_sha && (
          <>
            {' '}
            · <code title={state.commit_sha}>{state.commit_sha.slice(0, 12)}</code> {state.commit_message}
          </>
        )}
        {state.image_digest && (
          <>
            {' '}
            · image <code title={`${state.image}@${state.image_digest}`}>{state.image}</code>
          </>
        )}{' '}
        · <a href={config.serviceWhereUrl}>Releases</a>
      </p>
      <Actions config={config} state={state} csrf={csrf} />
      {state.approval_requests.map((id) => (
        <ApprovalCard key={id} id={id} config={config} csrf={csrf} version={state.status} />
      ))}
      <details className="wfr-graph-box" open={wide}>
        <summary>Pipeline graph</summary>
        <RunGraph stages={state.stages} now={now} onOpen={openStage} />
      </details>
      <div className="wfr-tabs" role="tablist" aria-label="Run views">
        <button type="button" role="tab" id="tab-log" aria-selected={tab === 'log'} aria-controls="panel-log" onClick={() => setTab('log')}>
          Log
        </button>
        <button
          type="button"
          role="tab"
          id="tab-reports"
          aria-selected={tab === 'reports'}
          aria-controls="panel-reports"
          onClick={() => setTab('reports')}
          data-testid="tab-reports"
        >
          Reports
        </button>
      </div>
      <div role="tabpanel" id="panel-log" aria-labelledby="tab-log" hidden={tab !== 'log'}>
        <LogViewer ref={viewer} store={store} version={version} stages={state.stages} now={now} logUrl={config.logUrl} ended={state.ended} />
      </div>
      <div role="tabpanel" id="panel-reports" aria-labelledby="tab-reports" hidden={tab !== 'reports'}>
        {tab === 'reports' && <Reports url={config.reportsUrl} version={hasScan ? state.stages.map((s) => s.status).join() : ''} />}
      </div>
    </>
  );
}

export function mount(element = document.getElementById('run-page')) {
  if (!element || element.dataset.mounted) return null;
  element.dataset.mounted = 'true';
  const config = JSON.parse(document.getElementById(element.dataset.config).textContent);
  element.textContent = '';
  const root = createRoot(element);
  root.render(
    <StrictMode>
      <RunPage config={config} csrf={element.dataset.csrf} />
    </StrictMode>,
  );
  element.dataset.ready = 'true';
  return root;
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => mount());
else mount();
