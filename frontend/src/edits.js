// Edits of a workflow document, as pure functions doc -> doc (never mutating their input).
// Drops and deletes return {doc} or {error: 'why not'}; the server stays the authority on
// validity, these rules only keep the pipeline's order and give instant feedback.
import { PHASE, SCANNERS, SCRIPT_HOOKS, SCRIPT_TITLES, envIndex, hiddenScripts, isImageSource, nodeKind, phaseOf } from './graph.js';

const clone = (value) => structuredClone(value);

export const PALETTE = [
  { type: 'script', label: 'Script', help: 'A shell script at the hook where you drop it' },
  ...SCANNERS.map(([key, label]) => ({ type: `scanner:${key}`, label: `Scan: ${label}`, help: 'Runs before the build' })),
  { type: 'environment', label: 'Deploy environment', help: 'Deploys after the push, in order' },
  { type: 'gate:manual', label: 'Manual gate', help: 'Someone starts the deploy by hand' },
  { type: 'gate:approval', label: 'Approval gate', help: 'N of M approvers must approve' },
];

export const HOOK_PHASE = { pre_build: 1, post_build: 3, post_push: 5, post_deploy: 7 };

export function newEnvironmentStep(name) {
  return {
    environment: name,
    mode: 'automatic',
    required_approvals: 0,
    approvers: { users: [], groups: [] },
    allow_self_approval: false,
    approval_expiry_hours: 168,
    auto_rollback: true,
  };
}

function label(hook) {
  return SCRIPT_TITLES[hook].toLowerCase();
}

/** The hook a script dropped on the arrow from `a` to `b` runs at, or an error. */
export function scriptHookFor(doc, a, b) {
  const pa = phaseOf(a);
  const pb = phaseOf(b);
  const image = isImageSource(doc);
  const envCount = doc.deploy?.environments?.length || 0;
  const candidates = SCRIPT_HOOKS.filter((hook) => {
    const phase = HOOK_PHASE[hook];
    if (image && hook !== 'post_deploy') return false;
    if (hook === 'post_deploy' && envCount === 0) return false;
    return pa <= phase && phase <= pb;
  });
  if (!candidates.length) {
    if (pa === PHASE.deploy && pb === PHASE.deploy) {
      return { error: 'Scripts cannot run between two deploys: drop it after the last deploy for a post-deploy script.' };
    }
    return {
      error: image
        ? 'A pre-built image has no build or push: the only script hook is after the last deploy.'
        : 'No script hook here: scripts run before the build, after the build, after the push or after the last deploy.',
    };
  }
  const hook = candidates[0];
  if ((doc.scripts?.[hook] || '').trim() !== '') {
    return { error: `This pipeline already has a ${label(hook)}: select it to edit it.` };
  }
  return { hook };
}

/**
 * Drop a palette item (`item` = PALETTE type) on an arrow {source, target} or a node {node}.
 * `context.environments` lists the project's environments ({name, is_active}) in order.
 * Returns {doc, select} (the node id to select next) or {error}.
 */
export function dropItem(doc, item, target, context = {}) {
  const next = clone(doc);
  if (target.node) {
    const index = envIndex(target.node);
    if (item.startsWith('gate:') && index !== null) return addGate(next, item, index);
    if (item.startsWith('gate:')) return { error: 'Drop a gate on a deploy environment.' };
    return { error: 'Drop it on an arrow between two steps: that is where it goes in the pipeline.' };
  }
  const { source: a, target: b } = target;
  const pa = phaseOf(a);
  const pb = phaseOf(b);
  if (item === 'script') {
    const found = scriptHookFor(next, a, b);
    if (found.error) return found;
    next.scripts = { ...(next.scripts || {}), [found.hook]: `# ${SCRIPT_TITLES[found.hook]}\necho "hello from ${found.hook}"\n` };
    return { doc: next, select: found.hook };
  }
  if (item.startsWith('scanner:')) {
    const key = item.slice('scanner:'.length);
    if (isImageSource(next)) return { error: 'A pre-built image is not built here, so there is nothing to scan.' };
    if (!(pb <= PHASE.build && pa < PHASE.build)) {
      return { error: 'Scanners check the source before the build: drop it on an arrow before Build.' };
    }
    if (next.scanners?.[key]) return { error: 'This scanner is already in the pipeline.' };
    next.scanners = { ...(next.scanners || {}), [key]: true };
    return { doc: next, select: `scanner:${key}` };
  }
  if (item === 'environment') {
    if (next.pipeline_type === 'ci') {
      return { error: 'A CI workflow does not deploy: change the pipeline type in Workflow settings first.' };
    }
    const lowest = isImageSource(next) ? PHASE.source : PHASE.push;
    if (pa < lowest || pb < PHASE.deploy || (nodeKind(a) === 'gate' && nodeKind(b) === 'deploy')) {
      return {
        error:
          nodeKind(a) === 'gate'
            ? 'That arrow joins a gate to its environment: drop it before the gate or after the deploy.'
            : 'Environments deploy after the push: drop it on an arrow after Push.',
      };
    }
    const envs = next.deploy?.environments || [];
    const used = new Set(envs.map((e) => e.environment));
    const free = (context.environments || []).filter((e) => !used.has(e.name));
    const choice = free.find((e) => e.is_active !== false) || free[0];
    if (!choice) return { error: 'Every environment of this project is already in the pipeline.' };
    const bi = envIndex(b);
    const at = bi === null ? envs.length : bi;
    next.deploy = { ...(next.deploy || {}), environments: [...envs] };
    next.deploy.environments.splice(at, 0, newEnvironmentStep(choice.name));
    return { doc: next, select: `deploy:${at}` };
  }
  if (item.startsWith('gate:')) {
    const index = envIndex(b);
    if (index === null) return { error: 'A gate stands before a deploy: drop it on a deploy environment.' };
    return addGate(next, item, index);
  }
  return { error: `Unknown palette item "${item}".` };
}

function addGate(next, item, index) {
  const env = next.deploy.environments[index];
  if (item === 'gate:manual') {
    if (env.mode === 'manual') return { error: `Deploying to ${env.environment} is already started by hand.` };
    env.mode = 'manual';
  } else {
    if (Number(env.required_approvals) > 0) {
      return { error: `${env.environment} already has an approval gate: select it to change the approvers.` };
    }
    env.required_approvals = 1;
  }
  return { doc: next, select: `gate:${index}` };
}

/** Delete the node `id` from the pipeline. Source, Build, Push and the end cannot go. */
export function removeNode(doc, id) {
  const next = clone(doc);
  const kind = nodeKind(id);
  if (SCRIPT_HOOKS.includes(kind)) {
    next.scripts = { ...next.scripts, [kind]: '' };
    return { doc: next };
  }
  if (kind === 'scanner') {
    next.scanners = { ...next.scanners, [id.slice('scanner:'.length)]: false };
    return { doc: next };
  }
  const index = envIndex(id);
  if (kind === 'gate') {
    const env = next.deploy.environments[index];
    Object.assign(env, { mode: 'automatic', required_approvals: 0, approvers: { users: [], groups: [] } });
    return { doc: next, select: `deploy:${index}` };
  }
  if (kind === 'deploy') {
    next.deploy.environments.splice(index, 1);
    return { doc: next };
  }
  const names = { source: 'Source', build: 'Build', push: 'Push', end: 'The end of the pipeline' };
  return { error: `${names[kind] || id} is part of every pipeline and cannot be deleted.` };
}

/** Move deploy environment `from` to index `to` (both 0-based). */
export function moveEnvironment(doc, from, to) {
  const envs = doc.deploy?.environments || [];
  if (from === to || to < 0 || to >= envs.length) return { doc };
  const next = clone(doc);
  const [moved] = next.deploy.environments.splice(from, 1);
  next.deploy.environments.splice(to, 0, moved);
  return { doc: next, select: `deploy:${to}` };
}

/** Where environment `from`, dropped at horizontal position x, lands among the others. */
export function environmentIndexAt(positions, from, x) {
  // positions: x of each deploy node's centre, in environment order.
  let to = 0;
  positions.forEach((px, i) => {
    if (i !== from && px < x) to += 1;
  });
  return to;
}

/** Set `value` at a dotted path like "deploy.environments[2].mode" (returns a new doc). */
export function setIn(doc, path, value) {
  const keys = parsePath(path);
  const next = clone(doc);
  let at = next;
  keys.slice(0, -1).forEach((key, i) => {
    if (at[key] === undefined || at[key] === null) at[key] = typeof keys[i + 1] === 'number' ? [] : {};
    at = at[key];
  });
  at[keys[keys.length - 1]] = value;
  return next;
}

export function getIn(doc, path) {
  return parsePath(path).reduce((at, key) => (at === undefined || at === null ? undefined : at[key]), doc);
}

export function parsePath(path) {
  const keys = [];
  String(path).replace(/([^.[\]]+)|\[(\d+)\]/g, (_, name, index) => {
    keys.push(index !== undefined ? Number(index) : name);
    return '';
  });
  return keys;
}

const GATE_FIELDS = new Set(['mode', 'required_approvals', 'approvers', 'allow_self_approval', 'approval_expiry_hours']);

/**
 * Which node a server error's field path belongs to, given the current document:
 * `deploy.environments[2].approvers.users` -> 'gate:2' (or 'deploy:2' when it has no gate).
 * Fields no node shows belong to 'workflow' (the Workflow settings panel).
 */
export function nodeForField(doc, field) {
  const keys = parsePath(field);
  const [head, second] = keys;
  if (head === 'source') return 'source';
  if (head === 'build') return isImageSource(doc) ? 'workflow' : 'build';
  if (head === 'push') return isImageSource(doc) ? 'workflow' : 'push';
  if (head === 'scripts' && SCRIPT_HOOKS.includes(second)) {
    const shown = (doc.scripts?.[second] || '').trim() !== '' && !hiddenScripts(doc).some((h) => h.hook === second);
    return shown ? second : 'workflow';
  }
  if (head === 'scanners' && doc.scanners?.[second] === true) return `scanner:${second}`;
  if (head === 'deploy' && second === 'environments' && typeof keys[2] === 'number') {
    const index = keys[2];
    const env = doc.deploy?.environments?.[index];
    if (!env) return 'workflow';
    const gated = env.mode === 'manual' || Number(env.required_approvals) > 0 ||
      (env.approvers?.users || []).length > 0 || (env.approvers?.groups || []).length > 0;
    return GATE_FIELDS.has(keys[3]) && gated ? `gate:${index}` : `deploy:${index}`;
  }
  return 'workflow';
}

/** Group server errors [{field, message}] by node id: {nodeId: [{field, message}]}. */
export function errorsByNode(doc, errors) {
  const out = {};
  for (const error of errors || []) {
    const id = error.field ? nodeForField(doc, error.field) : 'workflow';
    (out[id] = out[id] || []).push(error);
  }
  return out;
}

/** Errors whose path is `field` or lies under it ("deploy.environments[1].approvers" covers ".users"). */
export function errorsFor(errors, field) {
  return (errors || []).filter((e) => e.field === field || e.field.startsWith(`${field}.`) || e.field.startsWith(`${field}[`));
}
