// The run page's log: lines numbered across the whole run (#L120 is the 120th line the run
// printed), grouped per stage, each kept as plain text (search) and as HTML (ansi_up, with the
// colour state carried from line to line within a stage, as a terminal would).
import { AnsiUp } from 'ansi_up';

function newConverter() {
  const converter = new AnsiUp();
  converter.use_classes = true; // ansi-red-fg etc.: colours come from run.css (contrast-checked)
  return converter;
}

// ESC [ ... final byte, and OSC sequences (hyperlinks, titles) up to BEL or ST.
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

// True when the last SGR sequence of a line is a full reset (ESC[m or ESC[0m).
// eslint-disable-next-line no-control-regex
const LAST_SGR_RESETS = /\u001b\[0*m(?!.*\u001b\[[0-9;]*m)/;

export function stripAnsi(text) {
  return text.indexOf('\u001b') === -1 ? text : text.replace(ANSI_RE, '');
}

export class LogStore {
  constructor() {
    this.lines = []; // {stage, text, html, at}
    this.byStage = new Map(); // stage id -> [line index]
    this.converters = new Map();
    this.lastSeq = -1;
    this.version = 0;
  }

  /** Adds one chunk from the websocket ({seq, stage_run_id, text, at}); false if already seen. */
  addChunk(chunk) {
    if (chunk.seq <= this.lastSeq) return false;
    this.lastSeq = chunk.seq;
    const stage = chunk.stage_run_id;
    let converter = this.converters.get(stage);
    if (!converter) {
      converter = newConverter();
      this.converters.set(stage, converter);
    }
    let indexes = this.byStage.get(stage);
    if (!indexes) {
      indexes = [];
      this.byStage.set(stage, indexes);
    }
    const parts = chunk.text.split('\n');
    if (parts[parts.length - 1] === '') parts.pop(); // every chunk ends with a newline
    for (const raw of parts) {
      indexes.push(this.lines.length);
      const coloured = raw.indexOf('\u001b') !== -1;
      let html;
      if (coloured || converter.active) {
        html = converter.ansi_to_html(raw);
        // A colour set on one line lasts until a reset (SGR 0); until then every line goes
        // through ansi_up, the others take the fast path (most lines of a build log).
        if (coloured) converter.active = !LAST_SGR_RESETS.test(raw);
      } else {
        html = escapeHtml(raw);
      }
      this.lines.push({ stage, text: coloured ? stripAnsi(raw) : raw, html, at: chunk.at });
    }
    this.version += 1;
    return true;
  }

  /** Every occurrence of `term` (case-insensitive) as [line index, start offset in plain text]. */
  search(term, limit = 100000) {
    const found = [];
    if (!term) return found;
    const needle = term.toLowerCase();
    for (let i = 0; i < this.lines.length && found.length < limit; i += 1) {
      const hay = this.lines[i].text.toLowerCase();
      let at = hay.indexOf(needle);
      while (at !== -1 && found.length < limit) {
        found.push([i, at]);
        at = hay.indexOf(needle, at + needle.length);
      }
    }
    return found;
  }
}

/**
 * The rows the viewer draws, in stage order: a header per stage that has lines or has started,
 * then its lines unless collapsed. `rows` is an Int32Array: a line's index (>= 0), or
 * -(position of the stage in `order` + 1) for a stage header (no object per row: 100,000
 * lines re-lay out in about a millisecond).
 */
export function buildRows(store, stages, collapsed) {
  const known = new Set(stages.map((s) => s.id));
  const order = [...stages];
  for (const id of store.byStage.keys()) if (!known.has(id)) order.push({ id, name: `Stage ${id}` });
  let size = 0;
  for (const stage of order) size += 1 + (collapsed.has(stage.id) ? 0 : (store.byStage.get(stage.id) || []).length);
  const rows = new Int32Array(size);
  const rowOfLine = new Int32Array(store.lines.length).fill(-1);
  const rowOfStage = new Map();
  let n = 0;
  order.forEach((stage, position) => {
    const indexes = store.byStage.get(stage.id) || [];
    if (!indexes.length && (!stage.status || stage.status === 'pending')) return;
    rowOfStage.set(stage.id, n);
    rows[n++] = -(position + 1);
    if (collapsed.has(stage.id)) return;
    for (const index of indexes) {
      rowOfLine[index] = n;
      rows[n++] = index;
    }
  });
  return { rows: rows.subarray(0, n), rowOfLine, rowOfStage, order };
}

const ENTITY = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#x27;': "'", '&#39;': "'" };
export const escapeHtml = (s) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Wraps each occurrence of `term` in the text of `html` (ansi_up output: spans and escaped
 * text) in <mark>; the `current`-th occurrence of the line gets class "current". Matches are
 * found within one coloured run of text.
 */
export function highlightHtml(html, term, current = -1) {
  if (!term) return html;
  const needle = term.toLowerCase();
  let seen = 0;
  return html
    .split(/(<[^>]*>)/)
    .map((part) => {
      if (part.startsWith('<')) return part;
      const text = part.replace(/&(amp|lt|gt|quot|#x27|#39);/g, (m) => ENTITY[m]);
      const hay = text.toLowerCase();
      let out = '';
      let from = 0;
      let at = hay.indexOf(needle);
      if (at === -1) return part;
      while (at !== -1) {
        out += escapeHtml(text.slice(from, at));
        const cls = seen === current ? ' class="current"' : '';
        out += `<mark${cls}>${escapeHtml(text.slice(at, at + needle.length))}</mark>`;
        seen += 1;
        from = at + needle.length;
        at = hay.indexOf(needle, from);
      }
      return out + escapeHtml(text.slice(from));
    })
    .join('');
}

/** "1m 05s", "12.3 s", "2h 03m" for a duration in seconds; "" for null. */
export function formatDuration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return '';
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${rest}s`;
}

/** Seconds a stage (or run) took, or has been running for at `now` (ms). */
export function elapsed(item, now) {
  if (item.duration_seconds != null) return item.duration_seconds;
  if (item.started_at && !item.finished_at && !item.ended) {
    return Math.max(0, (now - Date.parse(item.started_at)) / 1000);
  }
  return null;
}
