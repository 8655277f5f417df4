// Pure conversion of the Workflows API document into React Flow nodes/edges.
// No React / DOM imports here so it can be unit-tested in plain Node.

export const NODE_SPACING_X = 240;

const SCRIPT_TITLES = {
  pre_build: 'Pre-build script',
  post_build: 'Post-build script',
  post_push: 'Post-push script',
  post_deploy: 'Post-deploy script',
};

const SCANNER_LABELS = [
  ['detect_secrets', 'detect-secrets'],
  ['trivy', 'trivy'],
  ['sonarqube', 'sonarqube'],
];

function str(value) {
  return value === null || value === undefined ? '' : String(value);
}

function hasScript(doc, key) {
  return str(doc?.scripts?.[key]).trim() !== '';
}

function firstLine(text) {
  const lines = str(text).trim().split(/\r?\n/);
  return lines.length > 1 ? `${lines[0]} …` : lines[0];
}

function branchRule(rule) {
  if (typeof rule === 'string') return rule;
  const pattern = str(rule?.pattern);
  const match = str(rule?.match);
  if (!match || match === 'exact' || match === 'wildcard') return pattern;
  return `${pattern} (${match})`;
}

export function sourceSummary(source) {
  if (source?.kind === 'image') {
    return str(source.image) || 'image';
  }
  const parts = [];
  const branches = Array.isArray(source?.branches) ? source.branches.map(branchRule).filter(Boolean) : [];
  if (branches.length) parts.push(`branches: ${branches.join(', ')}`);
  const tags = Array.isArray(source?.tags) ? source.tags.filter(Boolean) : [];
  if (tags.length) parts.push(`tags: ${tags.join(', ')}`);
  if (source?.pull_requests) parts.push('pull requests');
  return parts.length ? parts.join(' · ') : 'no branch rules';
}

export function buildSummary(build) {
  const parts = [str(build?.dockerfile) || 'Dockerfile'];
  if (build?.platform) parts.push(str(build.platform));
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

export function approvalBadge(env) {
  const n = Number(env?.required_approvals) || 0;
  if (n <= 0) return null;
  const users = Array.isArray(env?.approvers?.users) ? env.approvers.users : [];
  const groups = Array.isArray(env?.approvers?.groups) ? env.approvers.groups : [];
  const who = [...users.map(str), ...groups.map((g) => `${str(g)} (group)`)];
  return `approval: ${n} of ${who.length ? who.join(', ') : 'any approver'}`;
}

function scannerBadges(scanners) {
  return SCANNER_LABELS.filter(([key]) => scanners?.[key]).map(([, label]) => label);
}

/**
 * Convert the API document into {nodes, edges} for React Flow.
 * Node ids: source, pre_build, build, post_build, push, post_push,
 * deploy:<environment>, post_deploy.
 */
export function workflowToGraph(doc) {
  const steps = [];
  const isImage = doc?.source?.kind === 'image';
  const isCi = doc?.pipeline_type === 'ci';

  const addScript = (key) => {
    if (hasScript(doc, key)) {
      steps.push({
        id: key,
        kind: 'script',
        title: SCRIPT_TITLES[key],
        summary: firstLine(doc.scripts[key]),
        badges: [],
      });
    }
  };

  const sourceBadges = [];
  if (!isImage && doc?.source?.trigger === 'manual') sourceBadges.push('manual trigger');
  steps.push({
    id: 'source',
    kind: 'source',
    title: isImage ? 'Pre-built image' : 'Source',
    summary: sourceSummary(doc?.source),
    badges: sourceBadges,
  });

  if (!isImage) {
    addScript('pre_build');
    steps.push({
      id: 'build',
      kind: 'build',
      title: 'Build',
      summary: buildSummary(doc?.build),
      badges: scannerBadges(doc?.scanners),
    });
    addScript('post_build');
    steps.push({
      id: 'push',
      kind: 'push',
      title: 'Push',
      summary: pushSummary(doc?.push),
      badges: [],
    });
    addScript('post_push');
  }

  const environments = !isCi && Array.isArray(doc?.deploy?.environments) ? doc.deploy.environments : [];
  for (const env of environments) {
    const name = str(env?.environment);
    const badges = [];
    if (env?.mode === 'manual') badges.push('manual');
    const approval = approvalBadge(env);
    if (approval) badges.push(approval);
    steps.push({
      id: `deploy:${name}`,
      kind: 'deploy',
      title: 'Deploy',
      summary: name,
      badges,
    });
  }
  if (environments.length) addScript('post_deploy');

  const positions = doc?.layout?.positions || {};
  const nodes = steps.map((step, index) => {
    const saved = positions[step.id];
    const position =
      saved && Number.isFinite(Number(saved.x)) && Number.isFinite(Number(saved.y))
        ? { x: Number(saved.x), y: Number(saved.y) }
        : { x: index * NODE_SPACING_X, y: 0 };
    return {
      id: step.id,
      type: 'step',
      position,
      data: { kind: step.kind, title: step.title, summary: step.summary, badges: step.badges },
      domAttributes: { 'data-testid': `node-${step.id}` },
    };
  });

  const edges = [];
  for (let i = 1; i < nodes.length; i += 1) {
    const source = nodes[i - 1].id;
    const target = nodes[i].id;
    edges.push({
      id: `e:${source}->${target}`,
      source,
      target,
      animated: false,
      markerEnd: { type: 'arrowclosed' }, // MarkerType.ArrowClosed
    });
  }

  return { nodes, edges };
}
