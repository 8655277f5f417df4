// The visual workflow builder: palette, canvas, properties panel, YAML tab, save with diff
// and optimistic concurrency (If-Match / 412), undo/redo. The server validates; we show where.
import { Suspense, lazy, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ReactFlowProvider } from '@xyflow/react';
import Canvas, { DRAG_TYPE } from './Canvas.jsx';
import Panel from './Panel.jsx';
import { preloadEditors } from './LazyCodeEditor.jsx';
import { PALETTE, dropItem, errorsByNode, moveEnvironment, removeNode, setIn } from './edits.js';
import { createHistory, record, redo, reset, undo } from './history.js';
import { editablePart } from './documentKeys.js';
import { PIPELINE_LABELS, hiddenScripts } from './graph.js';

// The YAML tab (CodeMirror, the YAML parser) loads when first opened; see LazyCodeEditor.jsx.
const YamlTab = lazy(() => import('./YamlTab.jsx'));

export function defaultDocument(config) {
  const { service, project } = config;
  return {
    name: '',
    pipeline_type: service.git ? 'ci' : 'app_cd',
    source: {
      kind: service.git ? 'git' : 'image',
      trigger: 'manual',
      branches: service.git ? [{ pattern: service.default_branch, match: 'exact' }] : [],
      tags: [],
      pull_requests: false,
      image: null,
      concurrency: 'queue',
    },
    build: {
      dockerfile: 'Dockerfile',
      context: '.',
      platform: 'linux/amd64',
      cache: true,
      spot_instances: false,
      volume_size_gb: 20,
      builder: 'local',
      builder_environment: null,
    },
    push: { registry: service.git ? config.registries[0] || null : null, repository: service.git ? `${project.name}/${service.name}` : '', tag_template: '{short_sha}' },
    deploy: {
      port: null,
      replicas: 1,
      cron_schedule: null,
      cron_time_zone: 'UTC',
      cron_concurrency: 'Forbid',
      resources: { cpu_request: '', memory_request: '', cpu_limit: '', memory_limit: '' },
      health_check_path: '',
      environments: [],
    },
    scripts: { pre_build: '', post_build: '', post_push: '', post_deploy: '' },
    variables: [],
    scanners: { detect_secrets: false, trivy: false, sonarqube: false, fail_on: 'high' },
    stage_timeout_minutes: 60,
    layout: { positions: {} },
  };
}

async function api(url, { method = 'GET', body, csrf, version } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf) headers['X-CSRFToken'] = csrf;
  if (version) headers['If-Match'] = `"${version}"`;
  const response = await fetch(url, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = { detail: response.statusText };
  }
  return { status: response.status, ok: response.ok, data };
}

function isTyping(target) {
  return target instanceof Element && Boolean(target.closest('input, textarea, select, .cm-editor'));
}

function Palette({ editable, armed, setArmed }) {
  return (
    <nav className="wfb-palette" aria-label="Palette">
      <h2>Add to the pipeline</h2>
      <p className="wfb-field__help">Drag onto a + on an arrow, or press an item then a +.</p>
      {PALETTE.map((item) => (
        <button
          key={item.type}
          type="button"
          className={`wfb-palette__item${armed === item.type ? ' wfb-palette__item--armed' : ''}`}
          draggable={editable}
          disabled={!editable}
          aria-pressed={armed === item.type}
          title={item.help}
          data-testid={`palette-${item.type}`}
          onDragStart={(e) => {
            e.dataTransfer.setData(DRAG_TYPE, item.type);
            e.dataTransfer.effectAllowed = 'copy';
          }}
          onClick={() => setArmed(armed === item.type ? null : item.type)}
        >
          {item.label}
        </button>
      ))}
    </nav>
  );
}

function DiffView({ diff }) {
  return (
    <pre className="wfb-diff" data-testid="diff">
      {diff.split('\n').map((line, i) => (
        <div key={i} className={line.startsWith('+') ? 'wfb-diff__add' : line.startsWith('-') ? 'wfb-diff__del' : undefined}>
          {line || ' '}
        </div>
      ))}
    </pre>
  );
}

export default function Editor({ config, csrf, element }) {
  // The page embeds the saved document (same as GET apiUrl), so the first paint needs no
  // request after the bundle; a reload after a conflict fetches it.
  const initial = config.document || (config.apiUrl ? null : defaultDocument(config));
  const [status, setStatus] = useState(initial ? 'ready' : 'loading');
  const [history, setHistory] = useState(() => createHistory(initial));
  const [saved, setSaved] = useState(initial);
  const [version, setVersion] = useState(config.document?.version ?? null);
  const [selected, setSelected] = useState('workflow');
  const [errors, setErrors] = useState([]);
  const [message, setMessage] = useState(null);
  const [tab, setTab] = useState('canvas');
  const [armed, setArmed] = useState(null);
  const [dialog, setDialog] = useState(null); // {kind: 'diff'} | {kind: 'conflict', detail, version}
  const [busy, setBusy] = useState(false);
  const doc = history.present;
  const docRef = useRef(doc);
  docRef.current = doc;
  const editable = Boolean(config.canEdit);
  const dirty = useMemo(() => doc && saved && JSON.stringify(editablePart(doc)) !== JSON.stringify(editablePart(saved)), [doc, saved]);

  const load = useCallback(async () => {
    element.dataset.state = 'loading';
    const res = await api(config.apiUrl);
    if (!res.ok) {
      setStatus('error');
      setMessage({ kind: 'error', text: `Could not load the workflow (${res.status}): ${res.data?.detail || ''}` });
      element.dataset.state = 'error';
      return;
    }
    setHistory(reset(res.data));
    setSaved(res.data);
    setVersion(res.data.version);
    setErrors([]);
    setStatus('ready');
    if (element.dataset.ready) element.dataset.state = 'ready'; // a reload: the canvas is drawn
  }, [config.apiUrl, element]);

  useEffect(() => {
    if (config.apiUrl && !config.document) load();
  }, [config.apiUrl, config.document, load]);

  const change = useCallback((next, key = null) => setHistory((h) => record(h, next, key)), []);
  const ctx = {
    doc,
    docRef,
    config,
    errors,
    readOnly: !editable,
    set: (path, value) => change(setIn(docRef.current, path, value), path),
    move: (from, to) => {
      const res = moveEnvironment(docRef.current, from, to);
      change(res.doc);
      if (res.select) setSelected(res.select);
    },
    remove: (id) => apply(removeNode(docRef.current, id)),
  };

  function apply(result) {
    if (result.error) {
      setMessage({ kind: 'refused', text: result.error });
      return;
    }
    change(result.doc);
    setMessage(null);
    setSelected(result.select || 'workflow');
  }

  const onDropItem = useCallback(
    (item, target) => {
      const chosen = item || armed;
      if (!chosen) {
        setMessage({ kind: 'refused', text: 'Choose an item in the palette first, then press + where it goes.' });
        return;
      }
      setArmed(null);
      apply(dropItem(docRef.current, chosen, target, config));
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [armed, config],
  );

  // Keyboard: undo/redo everywhere but in text fields (they have their own); Delete a node.
  useEffect(() => {
    const onKey = (e) => {
      if (dialog) {
        // Escape closes either dialog without acting: keep editing, nothing is saved or lost.
        if (e.key === 'Escape' && !busy) {
          e.preventDefault();
          closeDialog();
        }
        return;
      }
      if (!editable) return;
      const mod = e.ctrlKey || e.metaKey;
      if (mod && (e.key === 'z' || e.key === 'Z') && !isTyping(e.target)) {
        e.preventDefault();
        setHistory((h) => (e.shiftKey ? redo(h) : undo(h)));
      } else if (mod && e.key === 'y' && !isTyping(e.target)) {
        e.preventDefault();
        setHistory(redo);
      } else if ((e.key === 'Delete' || e.key === 'Backspace') && !isTyping(e.target) && tab === 'canvas' && selected !== 'workflow') {
        e.preventDefault();
        ctx.remove(selected);
      } else if (e.key === 'Enter' && e.target instanceof Element && e.target.matches('.react-flow__node')) {
        const id = e.target.getAttribute('data-id');
        if (id && id !== 'end') setSelected(id);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  useEffect(() => {
    const onLeave = (e) => {
      if (dirty && editable) {
        e.preventDefault();
        e.returnValue = '';
      }
    };
    window.addEventListener('beforeunload', onLeave);
    return () => window.removeEventListener('beforeunload', onLeave);
  }, [dirty, editable]);

  // Closing a dialog without acting returns focus to the Save button it was opened from.
  const saveButton = useRef(null);
  const refocusSave = useRef(false);
  function closeDialog() {
    refocusSave.current = true;
    setDialog(null);
  }
  useEffect(() => {
    if (!dialog && refocusSave.current) {
      refocusSave.current = false;
      saveButton.current?.focus();
    }
  }, [dialog]);

  async function review() {
    const { documentDiff } = await import('./yamlDoc.js');
    setDialog({ kind: 'diff', diff: documentDiff(saved, docRef.current) });
  }

  const hidden = useMemo(() => (doc ? hiddenScripts(doc) : []), [doc]);
  const byNode = useMemo(() => (doc ? errorsByNode(doc, errors) : {}), [doc, errors]);

  async function save(overwriteVersion = null) {
    setBusy(true);
    const body = editablePart(doc);
    const res = config.apiUrl
      ? await api(config.apiUrl, { method: 'PUT', body, csrf, version: overwriteVersion || version })
      : await api(config.createUrl, { method: 'POST', body: { ...body, service: config.service.id }, csrf });
    setBusy(false);
    if (res.ok) {
      setDialog(null);
      setErrors([]);
      if (!config.apiUrl) {
        setSaved(doc); // nothing left unsaved: the next page is the new workflow's builder
        window.location.assign(`/workflows/${res.data.id}/builder/`);
        return;
      }
      setHistory((h) => ({ ...h, present: res.data }));
      setSaved(res.data);
      setVersion(res.data.version);
      setMessage({ kind: 'ok', text: `Saved (version ${res.data.version}).` });
      return;
    }
    if (res.status === 412) {
      setDialog({ kind: 'conflict', detail: res.data.detail, version: res.data.version });
      return;
    }
    setDialog(null);
    if (res.status === 400 && Array.isArray(res.data?.errors)) {
      setErrors(res.data.errors);
      const first = res.data.errors[0];
      const node = Object.keys(errorsByNode(doc, [first]))[0];
      setTab('canvas');
      setSelected(node);
      setMessage({ kind: 'error', text: `Not saved: ${res.data.errors.length} problem(s). ${res.data.detail}` });
      return;
    }
    setMessage({ kind: 'error', text: `Not saved (${res.status}): ${res.data?.detail || ''}` });
  }

  if (status === 'loading') return <div className="wfb-message">Loading workflow…</div>;
  if (status === 'error') {
    return (
      <div className="wfb-message wfb-message--error" role="alert" data-testid="builder-error">
        {message?.text}
      </div>
    );
  }

  return (
    <div className="wfb-editor__layout" data-dirty={dirty ? 'true' : 'false'}>
      <div className="wfb-toolbar" role="toolbar" aria-label="Workflow">
        <strong>{doc.name || 'New workflow'}</strong>
        <span className="wfb-badge wfb-badge--pipeline">{PIPELINE_LABELS[doc.pipeline_type] || doc.pipeline_type}</span>
        {!editable && (
          <span className="wfb-readonly" data-testid="read-only">
            Read-only: changing workflows needs the "Change workflow" permission.
          </span>
        )}
        <div className="wfb-tabs" role="tablist" aria-label="View">
          <button type="button" role="tab" aria-selected={tab === 'canvas'} onClick={() => setTab('canvas')} data-testid="tab-canvas">
            Pipeline
          </button>
          <button type="button" role="tab" aria-selected={tab === 'yaml'} onClick={() => setTab('yaml')} data-testid="tab-yaml">
            YAML
          </button>
        </div>
        <button
          type="button"
          onClick={() => setSelected('workflow')}
          className={byNode.workflow ? 'wfb-invalid-button' : undefined}
          data-testid="workflow-settings"
        >
          Workflow settings{byNode.workflow ? ' (!)' : ''}
          {hidden.length > 0 && ` · ${hidden.length} script${hidden.length > 1 ? 's' : ''} not run`}
        </button>
        {editable && (
          <>
            <button type="button" onClick={() => setHistory(undo)} disabled={!history.past.length} data-testid="undo" aria-keyshortcuts="Control+Z">
              Undo
            </button>
            <button type="button" onClick={() => setHistory(redo)} disabled={!history.future.length} data-testid="redo" aria-keyshortcuts="Control+Shift+Z">
              Redo
            </button>
            <button type="button" className="wfb-primary" disabled={!dirty || busy} onClick={review} data-testid="save" ref={saveButton}>
              {dirty ? 'Review and save…' : 'Saved'}
            </button>
          </>
        )}
      </div>
      <div className="wfb-status" role="status" aria-live="polite" data-testid="builder-message">
        {message && <span className={`wfb-msg wfb-msg--${message.kind}`}>{message.text}</span>}
      </div>
      <div className="wfb-editor__body">
        <Palette editable={editable && tab === 'canvas'} armed={armed} setArmed={setArmed} />
        <div className="wfb-canvas" data-testid="canvas">
          {tab === 'canvas' ? (
            <ReactFlowProvider>
              <Canvas
                doc={doc}
                selected={selected}
                onSelect={setSelected}
                errorsByNode={byNode}
                editable={editable}
                onDropItem={onDropItem}
                onMoveEnvironment={ctx.move}
                onReady={() => {
                  if (!element.dataset.ready) {
                    window.__builderReadyAt = performance.now(); // bench/builder_load.py
                    // The editors load while the user looks at the pipeline, off the first paint.
                    (window.requestIdleCallback || setTimeout)(preloadEditors, { timeout: 2000 });
                  }
                  element.dataset.state = 'ready';
                  element.dataset.ready = 'true';
                }}
              />
            </ReactFlowProvider>
          ) : (
            <Suspense fallback={<div className="wfb-message">Loading the YAML editor…</div>}>
              <YamlTab doc={doc} editable={editable} onChange={(next) => change(next, 'yaml')} />
            </Suspense>
          )}
        </div>
        <Panel ctx={ctx} selected={selected} />
      </div>
      {dialog && (
        <div className="wfb-dialog" role="dialog" aria-modal="true" aria-labelledby="wfb-dialog-title" data-testid={`dialog-${dialog.kind}`}>
          {dialog.kind === 'diff' ? (
            <>
              <h2 id="wfb-dialog-title">Changes since the saved version</h2>
              <DiffView diff={dialog.diff} />
              <div className="wfb-row">
                <button type="button" className="wfb-primary" disabled={busy} onClick={() => save()} data-testid="confirm-save" autoFocus>
                  Save
                </button>
                <button type="button" onClick={closeDialog} data-testid="keep-editing">
                  Keep editing
                </button>
              </div>
            </>
          ) : (
            <>
              <h2 id="wfb-dialog-title">Someone else saved this workflow</h2>
              <p data-testid="conflict-detail">{dialog.detail}</p>
              <div className="wfb-row">
                <button type="button" onClick={() => { setDialog(null); load(); }} data-testid="conflict-reload" autoFocus>
                  Reload their version (drop my changes)
                </button>
                <button type="button" className="wfb-danger" onClick={() => save(dialog.version)} data-testid="conflict-overwrite">
                  Overwrite with mine
                </button>
                <button type="button" onClick={closeDialog} data-testid="keep-editing">
                  Decide later (keep my edits, not saved)
                </button>
              </div>
            </>
          )}
        </div>
      )}
    </div>
  );
}
