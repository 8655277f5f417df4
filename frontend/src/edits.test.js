import { describe, expect, it } from 'vitest';
import { dropItem, environmentIndexAt, errorsByNode, moveEnvironment, nodeForField, removeNode, setIn } from './edits.js';
import { createHistory, record, redo, undo } from './history.js';
import { documentDiff, fromYaml, toYaml } from './yamlDoc.js';
import { documentToGraph, hiddenScripts } from './graph.js';
import sample from './__fixtures__/workflow.json';

const ctx = { environments: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod' }, { name: 'qa', is_active: true }] };
const ciDoc = () => ({
  ...structuredClone(sample),
  pipeline_type: 'ci',
  scripts: { pre_build: '', post_build: '', post_push: '', post_deploy: '' },
  scanners: { detect_secrets: false, trivy: false, sonarqube: false, fail_on: 'high' },
  deploy: { ...sample.deploy, environments: [] },
});
const arrow = (source, target) => ({ source, target });

describe('dropItem', () => {
  it('puts a script at the hook of the arrow it is dropped on', () => {
    const { doc, select } = dropItem(ciDoc(), 'script', arrow('build', 'push'), ctx);
    expect(select).toBe('post_build');
    expect(doc.scripts.post_build).toContain('echo');
    expect(documentToGraph(doc).nodes.map((n) => n.id)).toContain('post_build');
    expect(dropItem(ciDoc(), 'script', arrow('source', 'build')).select).toBe('pre_build');
    expect(dropItem(ciDoc(), 'script', arrow('push', 'end')).select).toBe('post_push');
  });

  it('refuses a second script at the same hook, and scripts between deploys', () => {
    expect(dropItem(sample, 'script', arrow('source', 'pre_build')).error).toMatch(/already has a pre-build script/);
    expect(dropItem(sample, 'script', arrow('deploy:0', 'gate:1')).error).toMatch(/between two deploys/);
    expect(dropItem(sample, 'script', arrow('deploy:2', 'end')).select).toBe('post_deploy');
  });

  it('adds scanners only before the build', () => {
    expect(dropItem(ciDoc(), 'scanner:trivy', arrow('source', 'build')).doc.scanners.trivy).toBe(true);
    expect(dropItem(ciDoc(), 'scanner:trivy', arrow('build', 'push')).error).toMatch(/before Build/);
    expect(dropItem(sample, 'scanner:detect_secrets', arrow('source', 'pre_build')).error).toMatch(/already/);
  });

  it('inserts environments after the push, at the arrow, with a free project environment', () => {
    expect(dropItem(ciDoc(), 'environment', arrow('push', 'end'), ctx).error).toMatch(/CI workflow does not deploy/);
    const cd = { ...ciDoc(), pipeline_type: 'app_cd' };
    const one = dropItem(cd, 'environment', arrow('push', 'end'), ctx).doc;
    expect(one.deploy.environments.map((e) => e.environment)).toEqual(['dev']);
    const two = dropItem(one, 'environment', arrow('push', 'deploy:0'), ctx);
    expect(two.doc.deploy.environments.map((e) => e.environment)).toEqual(['staging', 'dev']);
    expect(two.select).toBe('deploy:0');
    expect(dropItem(cd, 'environment', arrow('source', 'build'), ctx).error).toMatch(/after Push/);
    expect(dropItem(sample, 'environment', arrow('gate:1', 'deploy:1'), ctx).error).toMatch(/joins a gate/);
    const full = dropItem(sample, 'environment', arrow('deploy:2', 'end'), ctx).doc;
    expect(dropItem(full, 'environment', arrow('deploy:3', 'end'), ctx).error).toMatch(/Every environment/);
  });

  it('puts gates on environments only', () => {
    const manual = dropItem(sample, 'gate:manual', { node: 'deploy:0' });
    expect(manual.doc.deploy.environments[0].mode).toBe('manual');
    expect(manual.select).toBe('gate:0');
    expect(dropItem(sample, 'gate:manual', { node: 'deploy:1' }).error).toMatch(/already started by hand/);
    expect(dropItem(sample, 'gate:approval', arrow('deploy:0', 'gate:1')).doc.deploy.environments[1].required_approvals).toBe(1);
    expect(dropItem(sample, 'gate:approval', { node: 'build' }).error).toMatch(/deploy environment/);
    expect(dropItem(sample, 'gate:approval', arrow('source', 'pre_build')).error).toMatch(/before a deploy/);
  });
});

describe('removeNode and moveEnvironment', () => {
  it('deletes scripts, scanners, gates and environments but not the fixed stages', () => {
    expect(removeNode(sample, 'pre_build').doc.scripts.pre_build).toBe('');
    expect(removeNode(sample, 'scanner:detect_secrets').doc.scanners.detect_secrets).toBe(false);
    const env = removeNode(sample, 'gate:2').doc.deploy.environments[2];
    expect(env).toMatchObject({ mode: 'automatic', required_approvals: 0, approvers: { users: [], groups: [] } });
    expect(removeNode(sample, 'deploy:1').doc.deploy.environments.map((e) => e.environment)).toEqual(['dev', 'prod']);
    expect(removeNode(sample, 'build').error).toMatch(/part of every pipeline/);
  });

  it('reorders environments', () => {
    const moved = moveEnvironment(sample, 0, 2);
    expect(moved.doc.deploy.environments.map((e) => e.environment)).toEqual(['staging', 'prod', 'dev']);
    expect(environmentIndexAt([100, 400, 700], 0, 750)).toBe(2);
    expect(environmentIndexAt([100, 400, 700], 2, 50)).toBe(0);
  });
});

describe('server errors on nodes', () => {
  it('maps field paths to the node that shows the field', () => {
    expect(nodeForField(sample, 'deploy.environments[2].approvers.users')).toBe('gate:2');
    expect(nodeForField(sample, 'deploy.environments[0].environment')).toBe('deploy:0');
    expect(nodeForField(sample, 'deploy.environments[0].required_approvals')).toBe('deploy:0');
    expect(nodeForField(sample, 'push.registry')).toBe('push');
    expect(nodeForField(sample, 'scripts.pre_build')).toBe('pre_build');
    expect(nodeForField(sample, 'variables[0].key')).toBe('workflow');
    // Today's fields: the builder on Build, the schedule's zone in Workflow settings; a
    // pre-built image has no Build node, so its build errors go to Workflow settings too.
    expect(nodeForField(sample, 'build.builder_environment')).toBe('build');
    expect(nodeForField(sample, 'build.platform')).toBe('build');
    expect(nodeForField(sample, 'deploy.cron_time_zone')).toBe('workflow');
    const image = { ...sample, source: { ...sample.source, kind: 'image' } };
    expect(nodeForField(image, 'build.builder')).toBe('workflow');
    expect(errorsByNode(sample, [{ field: 'source.branches', message: 'x' }, { field: '', message: 'y' }])).toEqual({
      source: [{ field: 'source.branches', message: 'x' }],
      workflow: [{ field: '', message: 'y' }],
    });
  });
});

describe('history', () => {
  it('undoes and redoes, merging typing in one field', () => {
    let h = createHistory({ n: 0 });
    h = record(h, { n: 1 }, 'name', 1000);
    h = record(h, { n: 2 }, 'name', 1500);
    h = record(h, { n: 3 }, null, 1600);
    expect(h.past).toEqual([{ n: 0 }, { n: 2 }]);
    h = undo(h);
    expect(h.present).toEqual({ n: 2 });
    h = undo(h);
    expect(h.present).toEqual({ n: 0 });
    h = redo(redo(h));
    expect(h.present).toEqual({ n: 3 });
  });
});

describe('YAML', () => {
  it('round-trips the editable part and keeps the read-only keys', () => {
    const text = toYaml(sample);
    expect(text).not.toMatch(/^id:/m);
    const { doc } = fromYaml(text, sample);
    expect(doc).toEqual(sample);
  });

  it('leaves the server-computed next runs out, and keeps the new fields as written', () => {
    const cron = setIn(setIn(setIn(sample, 'deploy.cron_time_zone', 'Europe/Paris'), 'build.platform', 'linux/amd64,linux/arm64'), 'next_runs', ['2026-03-29T09:00:00+02:00']);
    const text = toYaml(cron);
    expect(text).not.toMatch(/next_runs/);
    expect(text).toMatch(/^  cron_time_zone: Europe\/Paris$/m);
    expect(text).toMatch(/^  platform: linux\/amd64,linux\/arm64$/m);
    expect(fromYaml(text, cron).doc).toEqual(cron);
    // The time zone changed, not the runs the server computed for the saved version: no diff noise.
    expect(documentDiff(cron, setIn(cron, 'next_runs', []))).toBe('');
  });

  it('reports line and column of invalid YAML', () => {
    const { error } = fromYaml('name: web\nsource:\n  kind: [git\n', sample);
    expect(error.line).toBeGreaterThan(1);
    expect(error.col).toBeGreaterThan(0);
    expect(fromYaml('- a\n- b\n').error.message).toMatch(/mapping/);
  });

  it('diffs against the saved document', () => {
    expect(documentDiff(sample, sample)).toBe('');
    const diff = documentDiff(sample, setIn(sample, 'build.platform', 'linux/arm64'));
    expect(diff).toMatch(/^-  platform: linux\/amd64$/m);
    expect(diff).toMatch(/^\+  platform: linux\/arm64$/m);
  });
});

describe('scripts at hooks the pipeline does not have', () => {
  const image = {
    ...sample,
    source: { ...sample.source, kind: 'image', image: 'registry.example.org/web:1' },
    scripts: { pre_build: 'make lint', post_build: '', post_push: 'echo pushed', post_deploy: 'curl -f $URL' },
  };

  it('lists them with the reason, keeps them, and puts their errors on the workflow', () => {
    expect(hiddenScripts(image).map((h) => h.hook)).toEqual(['pre_build', 'post_push']);
    expect(hiddenScripts(image)[0].reason).toMatch(/pre-built image/);
    expect(documentToGraph(image).nodes.map((n) => n.id)).not.toContain('pre_build');
    expect(nodeForField(image, 'scripts.pre_build')).toBe('workflow');
    expect(nodeForField(image, 'scripts.post_deploy')).toBe('post_deploy');
    const ci = { ...sample, pipeline_type: 'ci', deploy: { ...sample.deploy, environments: [] }, scripts: { post_deploy: 'echo' } };
    expect(hiddenScripts(ci)).toEqual([{ hook: 'post_deploy', reason: expect.stringMatching(/deploys to no environment/) }]);
    expect(hiddenScripts(sample)).toEqual([]);
  });
});
