import { useCallback, useEffect, useState } from 'react';
import { call } from './api.js';

const LABELS = {
  deploy: 'Deploy',
  terminate: 'Terminate',
  rerun: 'Re-run',
  'rerun-failed': 'Re-run from failed stage',
};

/** The buttons the run's status and the user's permissions allow (executions.run_page). */
export function Actions({ config, state, csrf }) {
  const [busy, setBusy] = useState('');
  const [error, setError] = useState('');
  const [confirming, setConfirming] = useState(false);

  const act = async (name) => {
    setBusy(name);
    setError('');
    try {
      const base = config.apiUrl;
      if (name === 'terminate') await call(`${base}terminate/`, { method: 'POST', body: {}, csrf });
      else if (name === 'deploy') await call(`${base}deploy/`, { method: 'POST', body: {}, csrf });
      else {
        const run = await call(`${base}rerun/`, { method: 'POST', body: { from_failed: name === 'rerun-failed' }, csrf });
        window.location.assign(`/executions/${run.id}/`);
        return;
      }
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy('');
      setConfirming(false);
    }
  };

  if (!state.actions.length && !error) return null;
  return (
    <div className="wfr-actions" data-testid="actions">
      {state.actions.map((name) =>
        name === 'terminate' && confirming ? (
          <span key={name} className="wfr-confirm" role="group" aria-label="Confirm termination">
            Terminate this run?{' '}
            <button type="button" className="wfr-danger" onClick={() => act('terminate')} disabled={!!busy} data-testid="terminate-confirm">
              Yes, terminate
            </button>{' '}
            <button type="button" onClick={() => setConfirming(false)} data-testid="terminate-cancel">
              Cancel
            </button>
          </span>
        ) : (
          <button
            key={name}
            type="button"
            data-testid={name}
            data-action={name}
            disabled={!!busy}
            className={name === 'terminate' ? 'wfr-danger' : name === 'deploy' ? 'wfr-primary' : ''}
            onClick={() => (name === 'terminate' ? setConfirming(true) : act(name))}
          >
            {busy === name ? `${LABELS[name]}…` : LABELS[name]}
          </button>
        ),
      )}
      {error && (
        <p className="wfr-error" role="alert" data-testid="action-error">
          {error}
        </p>
      )}
    </div>
  );
}

const short = (sha) => (sha || '').slice(0, 12);
const digestShort = (d) => (d ? `${d.slice(0, 19)}…` : '');

/** An open approval request: what is being approved, N-of-M, expiry, approve/reject. */
export function ApprovalCard({ id, config, csrf, version }) {
  const [card, setCard] = useState(null);
  const [error, setError] = useState('');
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const url = `${config.approvalsUrl}${id}/`;

  const load = useCallback(() => {
    call(`${url}card/`).then(setCard, (err) => setError(err.message));
  }, [url]);
  useEffect(load, [load, version]);

  const decide = async (decision) => {
    setBusy(true);
    setError('');
    try {
      await call(`${url}${decision}/`, { method: 'POST', body: { comment }, csrf });
      load();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  if (!card) return error ? <p className="wfr-error" role="alert">{error}</p> : null;
  const scans = Object.entries(card.scans || {});
  return (
    <section className="wfr-card" data-testid="approval-card" aria-labelledby={`approval-${id}`}>
      <h2 id={`approval-${id}`}>Approval to deploy to {card.environment}</h2>
      <p data-testid="approval-progress">
        <strong>
          {card.approvals} of {card.required}
        </strong>{' '}
        approval{card.required === 1 ? '' : 's'} needed from {card.approvers.length} approver{card.approvers.length === 1 ? '' : 's'} (
        {card.approvers.join(', ') || 'none designated'}) · expires{' '}
        <time dateTime={card.expires_at}>{new Date(card.expires_at).toLocaleString()}</time>
        {card.status !== 'open' && <> · {card.status}</>}
      </p>
      {card.decisions.length > 0 && (
        <ul className="wfr-decisions" data-testid="approval-decisions">
          {card.decisions.map((d) => (
            <li key={`${d.user}${d.at}`}>
              {d.user} {d.decision === 'approve' ? 'approved' : 'rejected'}
              {d.comment ? `: “${d.comment}”` : ''}
            </li>
          ))}
        </ul>
      )}
      <dl className="wfr-facts">
        <dt>Image</dt>
        <dd>
          <code data-testid="approval-image">{card.image || '—'}</code>
        </dd>
        <dt>Digest</dt>
        <dd>
          <code data-testid="approval-digest">{card.image_digest || '—'}</code>
        </dd>
        <dt>Runs there now</dt>
        <dd>
          {card.current ? (
            <>
              release #{card.current.id}, {short(card.current.commit_sha) || digestShort(card.current.image_digest)}
              {card.current.deployed_by ? ` by ${card.current.deployed_by}` : ''}
            </>
          ) : (
            'nothing yet (first release)'
          )}
        </dd>
      </dl>
      <h3>
        Commits since {card.current ? `release #${card.current.id}` : 'the start'} ({card.commits.length}
        {card.commits_complete ? '' : '+'})
      </h3>
      {card.commits.length ? (
        <ol className="wfr-commits" data-testid="approval-commits">
          {card.commits.map((c) => (
            <li key={c.sha}>
              <code>{short(c.sha)}</code> {c.subject} <span className="wfr-muted">— {c.author}</span>
            </li>
          ))}
        </ol>
      ) : (
        <p className="wfr-muted">No new commits: the same commit runs there.</p>
      )}
      {!card.commits_complete && <p className="wfr-muted">The list stops at the history the Source stage kept.</p>}
      {scans.length > 0 && (
        <>
          <h3>Security scan</h3>
          <ul data-testid="approval-scans">
            {scans.map(([kind, s]) => (
              <li key={kind}>
                {kind}: {Object.entries(s.counts || {}).map(([sev, n]) => `${n} ${sev}`).join(', ') || `${s.total ?? 0} findings`}
              </li>
            ))}
          </ul>
        </>
      )}
      {card.manifest_diff && (
        <details>
          <summary>Manifest changes</summary>
          <pre className="wfr-diff" data-testid="approval-diff">
            {card.manifest_diff.split('\n').map((line, i) => (
              <span key={i} className={line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : ''}>
                {line}
                {'\n'}
              </span>
            ))}
          </pre>
        </details>
      )}
      {card.can_decide ? (
        <div className="wfr-decide">
          <label>
            Comment <span className="wfr-muted">(required to reject)</span>
            <input value={comment} onChange={(e) => setComment(e.target.value)} data-testid="approval-comment" id="approval-comment" />
          </label>
          <button type="button" className="wfr-primary" onClick={() => decide('approve')} disabled={busy} data-testid="approve">
            Approve
          </button>
          <button type="button" className="wfr-danger" onClick={() => decide('reject')} disabled={busy} data-testid="reject">
            Reject
          </button>
        </div>
      ) : (
        card.status === 'open' && <p className="wfr-muted" data-testid="approval-refusal">{card.refusal}</p>
      )}
      {error && (
        <p className="wfr-error" role="alert" data-testid="approval-error">
          {error}
        </p>
      )}
    </section>
  );
}

/** Each scanner's severity summary and findings (secrets never shown), with a download link. */
export function Reports({ url, version }) {
  const [reports, setReports] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    call(url).then(setReports, (err) => setError(err.message));
  }, [url, version]);
  if (error) return <p className="wfr-error" role="alert">{error}</p>;
  if (!reports) return <p className="wfr-muted">Loading reports…</p>;
  if (!reports.length) return <p className="wfr-muted" data-testid="no-reports">This run has no reports.</p>;
  return (
    <div data-testid="reports">
      {reports.map((r) => (
        <Report key={r.id} report={r} />
      ))}
    </div>
  );
}

function Report({ report }) {
  const [findings, setFindings] = useState(null);
  const counts = report.summary?.counts || {};
  const load = () => {
    if (findings) return;
    call(report.download_url).then(
      (doc) => setFindings(Array.isArray(doc?.findings) ? doc.findings : []),
      () => setFindings([]),
    );
  };
  return (
    <section className="wfr-card" data-testid={`report-${report.kind}`}>
      <h3>
        {report.kind} <span className="wfr-muted">({report.summary?.total ?? 0} findings)</span>
      </h3>
      <table className="wfr-table">
        <caption className="wfr-sr">Findings by severity</caption>
        <thead>
          <tr>
            {Object.keys(counts).map((sev) => (
              <th key={sev} scope="col">
                {sev}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          <tr>
            {Object.entries(counts).map(([sev, n]) => (
              <td key={sev}>{n}</td>
            ))}
          </tr>
        </tbody>
      </table>
      {report.summary?.quality_gate && <p>Quality gate: {report.summary.quality_gate}</p>}
      <details onToggle={(e) => e.currentTarget.open && load()}>
        <summary>Findings</summary>
        {findings == null ? (
          <p className="wfr-muted">Loading…</p>
        ) : (
          <ul className="wfr-findings">
            {findings.slice(0, 500).map((f, i) => (
              <li key={i}>
                <strong>{f.severity}</strong> {f.title || f.rule || f.type || f.id} {f.file ? `— ${f.file}${f.line ? `:${f.line}` : ''}` : ''}
              </li>
            ))}
          </ul>
        )}
      </details>
      <a href={report.download_url} download={report.filename} className="wfr-button">
        Download {report.filename}
      </a>
    </section>
  );
}
