// Undo/redo history of documents. Pure: each function returns a new history.
// Typing in one field merges into one step (same `key` within MERGE_MS), so Ctrl-Z undoes a
// word or a field, not a single keystroke.

export const MERGE_MS = 1000;
export const LIMIT = 200;

export function createHistory(doc) {
  return { past: [], present: doc, future: [], lastKey: null, lastAt: 0 };
}

/** Record `doc` as the new present. `key` names the edited field (for merging), `now` in ms. */
export function record(history, doc, key = null, now = Date.now()) {
  if (doc === history.present) return history;
  const merge = key !== null && key === history.lastKey && now - history.lastAt < MERGE_MS;
  const past = merge ? history.past : [...history.past, history.present].slice(-LIMIT);
  return { past, present: doc, future: [], lastKey: key, lastAt: now };
}

export function undo(history) {
  if (!history.past.length) return history;
  const present = history.past[history.past.length - 1];
  return {
    past: history.past.slice(0, -1),
    present,
    future: [history.present, ...history.future],
    lastKey: null,
    lastAt: 0,
  };
}

export function redo(history) {
  if (!history.future.length) return history;
  const [present, ...future] = history.future;
  return { past: [...history.past, history.present], present, future, lastKey: null, lastAt: 0 };
}

/** Start over from `doc` (after a load, a reload or a save that the server rewrote). */
export function reset(doc) {
  return createHistory(doc);
}
