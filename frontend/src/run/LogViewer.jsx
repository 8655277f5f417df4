import { forwardRef, useCallback, useEffect, useImperativeHandle, useMemo, useRef, useState } from 'react';
import { buildRows, elapsed, formatDuration, highlightHtml } from './logModel.js';

const ROW_HEIGHT = 20;
const OVERSCAN = 20;
const lineFromHash = () => {
  const m = /^#L(\d+)$/.exec(window.location.hash);
  return m ? Number(m[1]) : null;
};
const timeOf = (iso) =>
  iso ? new Date(iso).toLocaleTimeString([], { hour12: false, hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';

/**
 * The run's log: a section per stage (collapsible, with its status and duration), line
 * numbers that link to #L<n>, timestamps, search with next/previous, follow mode. Only the
 * rows in view are in the DOM, so 100,000 lines scroll as smoothly as 100.
 */
const LogViewer = forwardRef(function LogViewer({ store, version, stages, now, logUrl, ended }, ref) {
  const scroller = useRef(null);
  const [collapsed, setCollapsed] = useState(() => new Set());
  const [showTimes, setShowTimes] = useState(() => localStorage.getItem('wf-log-times') === '1');
  const [follow, setFollow] = useState(() => !ended && lineFromHash() == null);
  const [selected, setSelected] = useState(lineFromHash);
  const [pendingJump, setPendingJump] = useState(lineFromHash);
  const [term, setTerm] = useState('');
  const [query, setQuery] = useState('');
  const [current, setCurrent] = useState(0);
  const programmatic = useRef(0);

  const stageById = useMemo(() => new Map(stages.map((s) => [s.id, s])), [stages]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const layout = useMemo(() => buildRows(store, stages, collapsed), [store, version, stages, collapsed]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const matches = useMemo(() => store.search(query), [store, version, query]);

  // Windowing with a fixed row height: which rows are in view is arithmetic, so the cost of a
  // render does not grow with the log (a measuring virtualiser walks every row on each update).
  const [view, setView] = useState({ top: 0, height: 600 });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return undefined;
    const observer = new ResizeObserver(() => setView({ top: el.scrollTop, height: el.clientHeight }));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const total = layout.rows.length;
  const first = Math.max(0, Math.floor(view.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(total, Math.ceil((view.top + view.height) / ROW_HEIGHT) + OVERSCAN);

  const scrollToRow = useCallback((row, align = 'center') => {
    const el = scroller.current;
    if (row < 0 || !el) return;
    programmatic.current = Date.now();
    const y = row * ROW_HEIGHT;
    if (align === 'start') el.scrollTop = y;
    else if (align === 'end') el.scrollTop = y + ROW_HEIGHT - el.clientHeight;
    else el.scrollTop = y - (el.clientHeight - ROW_HEIGHT) / 2;
    setView({ top: el.scrollTop, height: el.clientHeight });
  }, []);

  const expandStage = useCallback((id) => {
    setCollapsed((prev) => {
      if (!prev.has(id)) return prev;
      const next = new Set(prev);
      next.delete(id);
      return next;
    });
  }, []);

  // #L<n>: once line n has arrived, open its stage and bring it into view (also after reload).
  useEffect(() => {
    if (pendingJump == null || store.lines.length < pendingJump) return;
    const line = store.lines[pendingJump - 1];
    if (collapsed.has(line.stage)) {
      expandStage(line.stage);
      return;
    }
    scrollToRow(layout.rowOfLine[pendingJump - 1]);
    setPendingJump(null);
  }, [pendingJump, version, layout, collapsed, store, expandStage, scrollToRow]);

  useEffect(() => {
    const onHash = () => {
      const n = lineFromHash();
      if (n != null) {
        setSelected(n);
        setFollow(false);
        setPendingJump(n);
      }
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  // Follow: keep the newest line in view while the run prints.
  useEffect(() => {
    if (follow && layout.rows.length) scrollToRow(layout.rows.length - 1, 'end');
  }, [follow, layout, scrollToRow]);

  const onScroll = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    setView({ top: el.scrollTop, height: el.clientHeight });
    if (Date.now() - programmatic.current < 300) return;
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT * 2;
    if (!atBottom && follow) setFollow(false);
  }, [follow]);

  // Search: jump to the current match, opening its stage.
  const currentMatch = matches.length ? matches[Math.min(current, matches.length - 1)] : null;
  // Only when the current match moves: collapsing its stage afterwards is the user's choice.
  useEffect(() => {
    if (currentMatch) setPendingJump(currentMatch[0] + 1);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [currentMatch?.[0], currentMatch?.[1]]);

  useEffect(() => {
    const t = setTimeout(() => {
      setQuery(term);
      setCurrent(0);
    }, 150);
    return () => clearTimeout(t);
  }, [term]);

  const step = (delta) => {
    if (!matches.length) return;
    setFollow(false);
    setCurrent((c) => (Math.min(c, matches.length - 1) + delta + matches.length) % matches.length);
  };

  const toggleStage = useCallback((id) => {
    setCollapsed((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }, []);

  useImperativeHandle(
    ref,
    () => ({
      showStage(id) {
        expandStage(id);
        setFollow(false);
        const row = layout.rowOfStage.get(id);
        if (row != null) scrollToRow(row, 'start');
        requestAnimationFrame(() => {
          const header = scroller.current?.querySelector(`[data-stage-header="${id}"] button`);
          header?.focus({ preventScroll: true });
        });
      },
    }),
    [expandStage, layout, scrollToRow],
  );

  const selectLine = (n, event) => {
    event.preventDefault();
    history.replaceState(null, '', `#L${n}`);
    setSelected(n);
    setFollow(false);
  };

  // Occurrence number, within its line, of the current match (for the "current" mark).
  let currentInLine = -1;
  if (currentMatch) {
    currentInLine = 0;
    for (let i = matches.indexOf(currentMatch) - 1; i >= 0 && matches[i][0] === currentMatch[0]; i -= 1) currentInLine += 1;
  }

  return (
    <section className="wfr-log" aria-label="Log">
      <div className="wfr-log__toolbar" role="toolbar" aria-label="Log tools">
        <label className="wfr-search">
          <span className="wfr-sr">Search the log</span>
          <input
            type="search"
            placeholder="Search log"
            value={term}
            data-testid="log-search"
            onChange={(e) => setTerm(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') step(e.shiftKey ? -1 : 1);
            }}
          />
        </label>
        <span className="wfr-muted" data-testid="log-search-count" aria-live="polite">
          {query ? (matches.length ? `${Math.min(current, matches.length - 1) + 1} of ${matches.length}` : 'no matches') : ''}
        </span>
        <button type="button" onClick={() => step(-1)} disabled={!matches.length} data-testid="log-search-prev" aria-label="Previous match">
          ↑
        </button>
        <button type="button" onClick={() => step(1)} disabled={!matches.length} data-testid="log-search-next" aria-label="Next match">
          ↓
        </button>
        <label className="wfr-check">
          <input
            type="checkbox"
            checked={showTimes}
            data-testid="log-times"
            onChange={(e) => {
              setShowTimes(e.target.checked);
              localStorage.setItem('wf-log-times', e.target.checked ? '1' : '0');
            }}
          />
          Timestamps
        </label>
        <label className="wfr-check">
          <input type="checkbox" checked={follow} data-testid="log-follow" onChange={(e) => setFollow(e.target.checked)} />
          Follow
        </label>
        <a href={logUrl} download className="wfr-button" data-testid="log-download">
          Download raw
        </a>
      </div>
      <div
        className="wfr-log__scroller"
        ref={scroller}
        onScroll={onScroll}
        data-testid="log"
        data-lines={store.lines.length}
        id="log"
        tabIndex={0}
        aria-label="Log lines"
      >
        <div style={{ height: total * ROW_HEIGHT, position: 'relative', minWidth: '100%' }}>
          {Array.from({ length: Math.max(0, last - first) }, (_, i) => first + i).map((index) => {
            const code = layout.rows[index];
            const style = { transform: `translateY(${index * ROW_HEIGHT}px)`, height: ROW_HEIGHT };
            if (code < 0) {
              const row = { stage: layout.order[-code - 1].id };
              const stage = stageById.get(row.stage) || { id: row.stage, name: `Stage ${row.stage}` };
              const open = !collapsed.has(row.stage);
              const count = (store.byStage.get(row.stage) || []).length;
              return (
                <div key={`s${row.stage}`} className={`wfr-row wfr-section wfr-status-${stage.status}`} style={style} data-stage-header={row.stage}>
                  <button type="button" aria-expanded={open} onClick={() => toggleStage(row.stage)} data-testid={`section-${stage.name}`}>
                    <span aria-hidden="true">{open ? '▾' : '▸'}</span> {stage.name}
                  </button>
                  <span className="wfr-muted">
                    {stage.status_display || ''} · {count} line{count === 1 ? '' : 's'}
                  </span>
                  <span className="wfr-duration" data-testid={`section-duration-${stage.name}`}>
                    {formatDuration(elapsed(stage, now))}
                  </span>
                </div>
              );
            }
            const line = store.lines[code];
            const n = code + 1;
            const html = currentMatch && query ? highlightHtml(line.html, query, currentMatch[0] === code ? currentInLine : -1) : line.html;
            return (
              <div
                key={`l${n}`}
                className={`wfr-row wfr-line${selected === n ? ' wfr-selected' : ''}`}
                style={style}
                id={`L${n}`}
                data-line={n}
              >
                <a href={`#L${n}`} className="wfr-ln" onClick={(e) => selectLine(n, e)}>
                  {n}
                </a>
                {showTimes && <time className="wfr-time" dateTime={line.at}>{timeOf(line.at)}</time>}
                <span className="wfr-text" dangerouslySetInnerHTML={{ __html: html }} />
              </div>
            );
          })}
        </div>
        {!layout.rows.length && <p className="wfr-muted wfr-empty">{ended ? 'This run printed nothing.' : 'Waiting for the log…'}</p>}
      </div>
    </section>
  );
});

export default LogViewer;
