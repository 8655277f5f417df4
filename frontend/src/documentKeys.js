// The part of a workflow document a user edits. Pure and tiny: the first paint needs it (is
// anything unsaved?), so it stays out of yamlDoc.js, which loads the YAML parser.

// Keys that say where the workflow lives, not what it is, or that the server computes
// (next_runs): the server ignores them on save (workflows/services.py READ_ONLY_KEYS), so the
// YAML tab leaves them out (like the API's export).
export const READ_ONLY_KEYS = ['id', 'service', 'project', 'is_default', 'created_at', 'updated_at', 'next_runs', 'version', 'updated_by'];

export function editablePart(doc) {
  const out = {};
  for (const [key, value] of Object.entries(doc || {})) {
    if (!READ_ONLY_KEYS.includes(key)) out[key] = value;
  }
  return out;
}
