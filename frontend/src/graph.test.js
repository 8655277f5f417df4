import { describe, expect, it } from 'vitest';
import { workflowToGraph } from './graph.js';
import sample from './__fixtures__/workflow.json';

const clone = (o) => JSON.parse(JSON.stringify(o));
const ids = (g) => g.nodes.map((n) => n.id);
const node = (g, id) => g.nodes.find((n) => n.id === id);

describe('workflowToGraph', () => {
  it('orders the app_cd sample left to right', () => {
    const g = workflowToGraph(sample);
    expect(ids(g)).toEqual([
      'source', 'pre_build', 'build', 'push', 'deploy:dev', 'deploy:staging', 'deploy:prod',
    ]);
    expect(g.nodes.every((n) => n.type === 'step')).toBe(true);
    expect(node(g, 'deploy:dev').domAttributes).toEqual({ 'data-testid': 'node-deploy:dev' });
  });

  it('summarises each node', () => {
    const g = workflowToGraph(sample);
    expect(node(g, 'source').data).toMatchObject({ title: 'Source', summary: 'branches: main, release/* · tags: v*' });
    expect(node(g, 'pre_build').data.summary).toBe('make test');
    expect(node(g, 'build').data).toMatchObject({ summary: 'Dockerfile · linux/amd64', badges: ['detect-secrets'] });
    expect(node(g, 'push').data.summary).toBe('local/demo/web:{branch}-{short_sha}');
    expect(node(g, 'deploy:dev').data).toMatchObject({ title: 'Deploy', summary: 'dev', badges: [] });
    expect(node(g, 'deploy:staging').data.badges).toEqual(['manual']);
    expect(node(g, 'deploy:prod').data.badges).toEqual(['approval: 2 of alice, Approvers (group)']);
  });

  it('uses saved layout positions, else index * 240', () => {
    const g = workflowToGraph(sample);
    expect(node(g, 'source').position).toEqual({ x: 0, y: 0 });
    expect(node(g, 'build').position).toEqual({ x: 250, y: 0 });
    expect(node(g, 'pre_build').position).toEqual({ x: 240, y: 0 });
    expect(node(g, 'deploy:prod').position).toEqual({ x: 6 * 240, y: 0 });
  });

  it('connects consecutive nodes with non-animated arrow edges', () => {
    const g = workflowToGraph(sample);
    expect(g.edges).toHaveLength(g.nodes.length - 1);
    g.edges.forEach((e, i) => {
      expect(e.source).toBe(g.nodes[i].id);
      expect(e.target).toBe(g.nodes[i + 1].id);
      expect(e.animated).toBe(false);
      expect(e.markerEnd).toEqual({ type: 'arrowclosed' });
    });
    expect(new Set(g.edges.map((e) => e.id)).size).toBe(g.edges.length);
  });

  it('has no deploy nodes for ci pipelines (and no post_deploy)', () => {
    const doc = clone(sample);
    doc.pipeline_type = 'ci';
    doc.scripts.post_deploy = './notify.sh';
    doc.scripts.post_push = 'echo pushed';
    expect(ids(workflowToGraph(doc))).toEqual(['source', 'pre_build', 'build', 'push', 'post_push']);
  });

  it('includes every non-empty script node in place', () => {
    const doc = clone(sample);
    doc.scripts = { pre_build: 'a', post_build: 'b', post_push: '  ', post_deploy: 'd\nmore' };
    const g = workflowToGraph(doc);
    expect(ids(g)).toEqual([
      'source', 'pre_build', 'build', 'post_build', 'push',
      'deploy:dev', 'deploy:staging', 'deploy:prod', 'post_deploy',
    ]);
    expect(node(g, 'post_deploy').data.summary).toBe('d …');
  });

  it('skips build and push (and their scripts) for pre-built images', () => {
    const doc = clone(sample);
    doc.source = { kind: 'image', trigger: 'manual', branches: [], tags: [], pull_requests: false, image: 'nginx:1.27' };
    doc.scripts = { pre_build: 'x', post_build: 'y', post_push: 'z', post_deploy: 'w' };
    const g = workflowToGraph(doc);
    expect(ids(g)).toEqual(['source', 'deploy:dev', 'deploy:staging', 'deploy:prod', 'post_deploy']);
    expect(node(g, 'source').data).toMatchObject({ title: 'Pre-built image', summary: 'nginx:1.27' });
    expect(g.edges[0]).toMatchObject({ source: 'source', target: 'deploy:dev' });
  });

  it('tolerates a sparse document', () => {
    const g = workflowToGraph({ pipeline_type: 'worker_cd', source: { kind: 'git' } });
    expect(ids(g)).toEqual(['source', 'build', 'push']);
    expect(node(g, 'source').data.summary).toBe('no branch rules');
  });
});
