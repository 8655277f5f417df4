// The document as YAML and back, and a line diff against the saved version. Pure.
// Loaded on first use (YAML tab, review before save): `yaml` and `diff` are not needed to draw.
import { parseDocument, stringify } from 'yaml';
import { createTwoFilesPatch } from 'diff';
import { READ_ONLY_KEYS, editablePart } from './documentKeys.js';

export { READ_ONLY_KEYS, editablePart };

export function toYaml(doc) {
  return stringify(editablePart(doc), { lineWidth: 0 });
}

/**
 * Parse YAML text into a document. Returns {doc} or {error: {message, line, col}} (1-based).
 * The read-only keys of `base` (id, service, ...) are kept.
 */
export function fromYaml(text, base = {}) {
  const parsed = parseDocument(text, { prettyErrors: true });
  if (parsed.errors.length) {
    const err = parsed.errors[0];
    const [line, col] = err.linePos?.[0] ? [err.linePos[0].line, err.linePos[0].col] : [1, 1];
    return { error: { message: err.message.split('\n')[0], line, col } };
  }
  const value = parsed.toJS();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { error: { message: 'The workflow document must be a mapping (key: value lines)', line: 1, col: 1 } };
  }
  const kept = {};
  for (const key of READ_ONLY_KEYS) if (base[key] !== undefined) kept[key] = base[key];
  return { doc: { ...kept, ...value } };
}

/** A unified diff of the saved document against the edited one (empty string when equal). */
export function documentDiff(saved, edited) {
  const before = toYaml(saved);
  const after = toYaml(edited);
  if (before === after) return '';
  return createTwoFilesPatch('saved', 'edited', before, after, '', '', { context: 3 })
    .split('\n')
    .slice(1) // drop the "=====" header line
    .join('\n');
}
