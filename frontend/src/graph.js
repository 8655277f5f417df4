// The pipeline graph <-> workflow document mapping. Pure: no React, no DOM.
//
// The document (workflows/document.py on the server) is the single authority; the graph is a
// view of it. documentToGraph(doc) puts every field either on a node or in `graph.workflow`
// (the parts no node shows), so graphToDocument(documentToGraph(doc)) gives back the same
// document (a property test checks it for any valid document).
//
// Node ids: source, pre_build, scanner:<key>, build, post_build, push, post_push,
// gate:<i>, deploy:<i> (i = index in deploy.environments), post_deploy, end.

export const SCRIPT_HOOKS = ['pre_build', 'post_build', 'post_push', 'post_deploy'];

export const SCRIPT_TITLES = {
  pre_build: 'Pre-build script',
  post_build: 'Post-build script',
  post_push: 'Post-push script',
  post_deploy: 'Post-deploy script',
};

export const SCANNERS = [
  ['detect_secrets', 'detect-secrets'],
  ['trivy', 'Trivy'],
  ['sonarqube', 'SonarQube'],
];

export const PIPELINE_LABELS = {
  ci: 'CI',
  app_cd: 'App CD',
  cron_cd: 'Cron CD',
  worker_cd: 'Queues & Workers CD',
};

// Where each kind of node stands in the pipeline, left to right. Drop rules use it.
export const PHASE = {
  source: 0,
  pre_build: 1,
  scanner: 1,
  build: 2,
  post_build: 3,
  push: 4,
  post_push: 5,
  gate: 6,
  deploy: 6,
  post_deploy: 7,
  end: 8,
};

const clone = (value) => (value === undefined ? undefined : structuredClone(value));

function str(value) {
  return value === null || value === undefined ? '' : String(value);
}

function firstLine(text) {
  const lines = str(text).trim().split(/\r?\n/);
  return lines.length > 1 ? `${lines[0]} …` : lines[0];
}

export function isImageSource(doc) {
  return doc?.source?.kind === 'image';
}

/** The kind part of a node id: 'deploy:2' -> 'deploy', 'scanner:trivy' -> 'scanner'. */
export function nodeKind(id) {
  const kind = String(id).split(':')[0];
  return SCRIPT_HOOKS.includes(kind) ? kind : kind;
}

export function phaseOf(id) {
  return PHASE[nodeKind(id)];
}

/** The environment index a gate:/deploy: node id names, else null. */
export function envIndex(id) {
  const m = /^(?:gate|deploy):(\d+)$/.exec(String(id));
  return m ? Number(m[1]) : null;
}

function branchRule(rule) {
  if (typeof rule === 'string') return rule;
  return str(rule?.pattern);
}

export function sourceSummary(source) {
  if (source?.kind === 'image') return str(source.image) || 'the service image';
  const parts = [];
  const branches = Array.isArray(source?.branches) ? source.branches.map(branchRule).filter(Boolean) : [];
  if (branches.length) parts.push(`branches: ${branches.join(', ')}`);
  const tags = Array.isArray(source?.tags) ? source.tags.filter(Boolean) : [];
  if (tags.length) parts.push(`tags: ${tags.join(', ')}`);
  if (source?.pull_requests) parts.push('pull requests');
  return parts.length ? parts.join(' · ') : 'no branch rules';
}

// workflows/models.py Platform and BuilderKind: value -> label.
export const PLATFORM_LABELS = {
  'linux/amd64': 'linux/amd64',
  'linux/arm64': 'linux/arm64',
  'linux/amd64,linux/arm64': 'linux/amd64 + linux/arm64 (one multi-arch image)',
};

export const BUILDER_LABELS = {
  local: 'Local engine (this machine)',
  kubernetes: 'Kubernetes pod (in an environment\'s cluster)',
};

export function buildSummary(build) {
  const parts = [str(build?.dockerfile) || 'Dockerfile'];
  const platform = str(build?.platform);
  if (platform) parts.push(platform.includes(',') ? `multi-arch ${platform.split(',').map((p) => p.replace(/^linux\//, '')).join('+')}` : platform);
  if (build?.builder === 'kubernetes') parts.push(`on ${str(build.builder_environment) || 'Kubernetes'}`);
  return parts.join(' · ');
}

export function pushSummary(push) {
  const registry = str(push?.registry);
  const repository = str(push?.repository);
  const tag = str(push?.tag_template);
  let out = registry && repository ? `${registry}/${repository}` : registry || repository;
  if (tag) out += `:${tag}`;
  return out || 'not configured';
}

export function hasGate(env) {
  return (
    env?.mode === 'manual' ||
    Number(env?.required_approvals) > 0 ||
    (env?.approvers?.users || []).length > 0 ||
    (env?.approvers?.groups || []).length > 0
  );
}

export function gateSummary(env) {
  const parts = [];
  if (env?.mode === 'manual') parts.push('manual');
  const n = Number(env?.required_approvals) || 0;
  const users = env?.approvers?.users || [];
  const groups = env?.approvers?.groups || [];
  if (n > 0 || users.length || groups.length) {
    const who = [...users.map(str), ...groups.map((g) => `${str(g)} (group)`)];
    parts.push(`${n} of ${who.length ? who.join(', ') : 'no approvers yet'}`);
  }
  return parts.join(' · ');
}

/** Scripts that have a node: non-blank, and at a hook this pipeline has. */
function scriptShown(doc, hook, envCount) {
  if (str(doc?.scripts?.[hook]).trim() === '') return false;
  if (hook === 'post_deploy') return envCount > 0;
  return !isImageSource(doc);
}

/**
 * Non-blank scripts at hooks this pipeline does not have, so no node shows them and the engine
 * skips them (executions/services.py plan_stages): [{hook, reason}]. The document keeps them.
 */
export function hiddenScripts(doc) {
  const envCount = Array.isArray(doc?.deploy?.environments) ? doc.deploy.environments.length : 0;
  return SCRIPT_HOOKS.filter((hook) => str(doc?.scripts?.[hook]).trim() !== '' && !scriptShown(doc, hook, envCount)).map((hook) => ({
    hook,
    reason:
      hook === 'post_deploy'
        ? 'This pipeline deploys to no environment, so there is no "after the last deploy".'
        : 'A pre-built image is not built or pushed here, so this hook never comes.',
  }));
}

/**
 * Convert a workflow document into {nodes, edges, workflow} in pipeline order.
 * Nodes carry the part of the document they show in `data.part`; `workflow` holds the rest.
 * Positions are left at 0: layoutGraph() places the nodes.
 */
export function documentToGraph(doc) {
  const steps = [];
  const image = isImageSource(doc);
  const environments = Array.isArray(doc?.deploy?.environments) ? doc.deploy.environments : [];
  const rest = clone(doc) || {};
  rest.scripts = { ...(rest.scripts || {}) };
  rest.scanners = { ...(rest.scanners || {}) };
  if (rest.deploy) rest.deploy = { ...rest.deploy };

  const script = (hook) => {
    if (!scriptShown(doc, hook, environments.length)) return;
    steps.push({
      id: hook,
      kind: 'script',
      title: SCRIPT_TITLES[hook],
      summary: firstLine(doc.scripts[hook]),
      part: { hook, text: doc.scripts[hook] },
    });
    delete rest.scripts[hook];
  };

  steps.push({
    id: 'source',
    kind: 'source',
    title: image ? 'Pre-built image' : 'Source',
    summary: sourceSummary(doc?.source),
    badges: !image && doc?.source?.trigger === 'automatic' ? ['automatic'] : ['manual trigger'],
    part: clone(doc?.source),
  });
  delete rest.source;

  if (!image) {
    script('pre_build');
    for (const [key, label] of SCANNERS) {
      if (doc?.scanners?.[key] === true) {
        steps.push({
          id: `scanner:${key}`,
          kind: 'scanner',
          title: `Scan: ${label}`,
          summary: `fails on ${str(doc.scanners.fail_on) || 'high'} or worse`,
          part: { key },
        });
        delete rest.scanners[key];
      }
    }
    steps.push({
      id: 'build',
      kind: 'build',
      title: 'Build',
      summary: buildSummary(doc?.build),
      part: clone(doc?.build),
    });
    delete rest.build;
    script('post_build');
    steps.push({
      id: 'push',
      kind: 'push',
      title: 'Push',
      summary: pushSummary(doc?.push),
      part: clone(doc?.push),
    });
    delete rest.push;
    script('post_push');
  }

  environments.forEach((env, index) => {
    const name = str(env?.environment);
    if (hasGate(env)) {
      steps.push({
        id: `gate:${index}`,
        kind: 'gate',
        title: `Gate: ${name || '?'}`,
        summary: gateSummary(env),
        testid: `gate:${name}`,
      });
    }
    steps.push({
      id: `deploy:${index}`,
      kind: 'deploy',
      title: 'Deploy',
      summary: name || 'choose an environment',
      badges: env?.auto_rollback === false ? ['no auto-rollback'] : [],
      testid: `deploy:${name}`,
      part: clone(env),
    });
  });
  if (rest.deploy) delete rest.deploy.environments;
  script('post_deploy');
  steps.push({ id: 'end', kind: 'end', title: 'Done', summary: '' });

  const nodes = steps.map((step) => ({
    id: step.id,
    type: step.kind === 'end' ? 'end' : 'step',
    position: { x: 0, y: 0 },
    draggable: step.kind === 'deploy',
    data: {
      kind: step.kind,
      title: step.title,
      summary: step.summary,
      badges: step.badges || [],
      part: step.part,
    },
    domAttributes: { 'data-testid': `node-${step.testid || step.id}` },
  }));

  const edges = [];
  for (let i = 1; i < nodes.length; i += 1) {
    const source = nodes[i - 1].id;
    const target = nodes[i].id;
    edges.push({
      id: `e:${source}->${target}`,
      source,
      target,
      type: 'insert',
      markerEnd: { type: 'arrowclosed' },
    });
  }
  return { nodes, edges, workflow: rest };
}

/** Nodes in pipeline order, following the edges from `source`. */
export function chainOrder(graph) {
  const next = new Map(graph.edges.map((e) => [e.source, e.target]));
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const out = [];
  const seen = new Set();
  for (let id = 'source'; id && byId.has(id) && !seen.has(id); id = next.get(id)) {
    seen.add(id);
    out.push(byId.get(id));
  }
  return out;
}

/** Rebuild the document from a graph made by documentToGraph (environment order = chain order). */
export function graphToDocument(graph) {
  const doc = clone(graph.workflow) || {};
  const environments = [];
  const scripts = { ...(doc.scripts || {}) };
  const scanners = { ...(doc.scanners || {}) };
  let hasScripts = doc.scripts !== undefined;
  let hasScanners = doc.scanners !== undefined;
  for (const node of chainOrder(graph)) {
    const { kind, part } = node.data;
    if (kind === 'source') doc.source = clone(part);
    else if (kind === 'build') doc.build = clone(part);
    else if (kind === 'push') doc.push = clone(part);
    else if (kind === 'script') {
      scripts[part.hook] = part.text;
      hasScripts = true;
    } else if (kind === 'scanner') {
      scanners[part.key] = true;
      hasScanners = true;
    } else if (kind === 'deploy') environments.push(clone(part));
  }
  for (const key of ['source', 'build', 'push']) if (doc[key] === undefined) delete doc[key];
  if (hasScripts) doc.scripts = scripts;
  if (hasScanners) doc.scanners = scanners;
  if (doc.deploy || environments.length) doc.deploy = { ...(doc.deploy || {}), environments };
  return doc;
}
