import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chainOrder, documentToGraph, graphToDocument } from './graph.js';
import { layoutGraph } from './layout.js';
import sample from './__fixtures__/workflow.json';

const clone = (o) => structuredClone(o);
const ids = (g) => g.nodes.map((n) => n.id);
const node = (g, id) => g.nodes.find((n) => n.id === id);

// Any document the server's WorkflowDocumentSerializer accepts, in the shape GET returns.
const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const text = fc.oneof(fc.constant(''), fc.constant('  \n'), fc.string({ maxLength: 40 }));
const envStep = (environment) =>
  fc.record({
    environment: fc.constant(environment),
    mode: fc.constantFrom('automatic', 'manual'),
    required_approvals: fc.integer({ min: 0, max: 20 }),
    approvers: fc.record({ users: fc.array(name, { maxLength: 3 }), groups: fc.array(name, { maxLength: 2 }) }),
    allow_self_approval: fc.boolean(),
    approval_expiry_hours: fc.integer({ min: 1, max: 2160 }),
    auto_rollback: fc.boolean(),
  });
export const documentArb = fc
  .uniqueArray(name, { maxLength: 6 })
  .chain((envNames) =>
    fc.record({
      id: fc.integer({ min: 1 }),
      name,
      service: fc.record({ id: fc.integer({ min: 1 }), name }),
      project: fc.record({ id: fc.integer({ min: 1 }), name }),
      is_default: fc.boolean(),
      version: fc.integer({ min: 1 }),
      pipeline_type: fc.constantFrom('ci', 'app_cd', 'cron_cd', 'worker_cd'),
      source: fc.record({
        kind: fc.constantFrom('git', 'image'),
        trigger: fc.constantFrom('automatic', 'manual'),
        branches: fc.array(fc.record({ pattern: name, match: fc.constantFrom('exact', 'wildcard') }), { maxLength: 3 }),
        tags: fc.array(name, { maxLength: 2 }),
        pull_requests: fc.boolean(),
        image: fc.option(name, { nil: null }),
        concurrency: fc.constantFrom('queue', 'cancel_in_progress'),
      }),
      build: fc.record({
        dockerfile: name,
        context: fc.constantFrom('.', 'app'),
        platform: fc.constantFrom('linux/amd64', 'linux/arm64', 'linux/amd64,linux/arm64'),
        cache: fc.boolean(),
        spot_instances: fc.boolean(),
        volume_size_gb: fc.integer({ min: 1, max: 500 }),
        builder: fc.constantFrom('local', 'kubernetes'),
        builder_environment: fc.option(name, { nil: null }),
      }),
      push: fc.record({ registry: fc.option(name, { nil: null }), repository: name, tag_template: fc.constantFrom('{short_sha}', '{branch}-{sha}') }),
      deploy: fc.record({
        port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: null }),
        replicas: fc.integer({ min: 0, max: 100 }),
        cron_schedule: fc.option(fc.constant('*/5 * * * *'), { nil: null }),
        cron_time_zone: fc.constantFrom('UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata'),
        cron_concurrency: fc.constantFrom('Allow', 'Forbid', 'Replace'),
        resources: fc.record({ cpu_request: fc.constantFrom('', '100m'), memory_request: fc.constant(''), cpu_limit: fc.constant(''), memory_limit: fc.constantFrom('', '1Gi') }),
        health_check_path: fc.constantFrom('', '/health'),
        environments: fc.tuple(...envNames.map(envStep)),
      }),
      scripts: fc.record({ pre_build: text, post_build: text, post_push: text, post_deploy: text }),
      variables: fc.array(
        fc.record({
          key: fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/),
          value: fc.option(fc.string({ maxLength: 10 }), { nil: null }),
          secret: fc.boolean(),
          scope: fc.constantFrom('build', 'runtime', 'both'),
          secret_manager: fc.constantFrom(null, 'aws', 'gcp'),
          secret_ref: fc.constantFrom('', 'prod/db'),
        }),
        { maxLength: 3 },
      ),
      scanners: fc.record({ detect_secrets: fc.boolean(), trivy: fc.boolean(), sonarqube: fc.boolean(), fail_on: fc.constantFrom('low', 'medium', 'high', 'critical', 'never') }),
      stage_timeout_minutes: fc.integer({ min: 1, max: 180 }),
      next_runs: fc.array(fc.constantFrom('2026-03-29T09:00:00+02:00', '2026-03-30T09:00:00+02:00'), { maxLength: 3 }),
      layout: fc.record({ positions: fc.dictionary(name, fc.record({ x: fc.integer(), y: fc.integer() }), { maxKeys: 2 }) }),
      created_at: fc.constant('2026-01-01T00:00:00+00:00'),
      updated_at: fc.constant('2026-01-02T00:00:00+00:00'),
      updated_by: fc.option(name, { nil: null }),
    }),
  );

describe('documentToGraph / graphToDocument', () => {
  it('round-trips any valid document', () => {
    fc.assert(
      fc.property(documentArb, (doc) => {
        const before = clone(doc);
        const graph = documentToGraph(doc);
        expect(graphToDocument(graph)).toEqual(doc);
        expect(doc).toEqual(before); // the input is not changed
      }),
      { numRuns: 200 },
    );
  }, 60000); // a busy CI machine; fast-check's runs are the point, not their speed

  it('keeps environment order from the chain, not from the node list', () => {
    fc.assert(
      fc.property(documentArb, (doc) => {
        const graph = documentToGraph(doc);
        const shuffled = { ...graph, nodes: [...graph.nodes].reverse() };
        expect(graphToDocument(shuffled)).toEqual(doc);
      }),
      { numRuns: 100 },
    );
  }, 60000);

  it('orders the app_cd sample left to right, with gates before their deploys', () => {
    const g = documentToGraph(sample);
    expect(ids(g)).toEqual([
      'source', 'pre_build', 'scanner:detect_secrets', 'build', 'push',
      'deploy:0', 'gate:1', 'deploy:1', 'gate:2', 'deploy:2', 'end',
    ]);
    expect(node(g, 'deploy:0').domAttributes).toEqual({ 'data-testid': 'node-deploy:dev' });
    expect(node(g, 'gate:2').domAttributes).toEqual({ 'data-testid': 'node-gate:prod' });
    expect(chainOrder(g).map((n) => n.id)).toEqual(ids(g));
  });

  it('shows each node\'s key settings in one line', () => {
    const g = documentToGraph(sample);
    expect(node(g, 'source').data).toMatchObject({ title: 'Source', summary: 'branches: main, release/* · tags: v*' });
    expect(node(g, 'pre_build').data.summary).toBe('make test');
    expect(node(g, 'build').data.summary).toBe('Dockerfile · linux/amd64');
    expect(node(g, 'push').data.summary).toBe('local/demo/web:{branch}-{short_sha}');
    expect(node(g, 'scanner:detect_secrets').data.summary).toBe('fails on high or worse');
    expect(node(g, 'gate:1').data.summary).toBe('manual');
    expect(node(g, 'gate:2').data.summary).toBe('2 of alice, Approvers (group)');
    expect(node(g, 'deploy:2').data.summary).toBe('prod');
  });

  it('shows a multi-arch platform and a Kubernetes builder on the Build node', () => {
    const doc = clone(sample);
    doc.build = { ...doc.build, platform: 'linux/amd64,linux/arm64', builder: 'kubernetes', builder_environment: 'builders' };
    const g = documentToGraph(doc);
    expect(node(g, 'build').data.summary).toBe('Dockerfile · multi-arch amd64+arm64 · on builders');
    expect(node(g, 'build').data.part).toMatchObject({ builder: 'kubernetes', builder_environment: 'builders' });
    expect(graphToDocument(g)).toEqual(doc);
  });

  it('connects consecutive nodes with unique edges', () => {
    const g = documentToGraph(sample);
    expect(g.edges).toHaveLength(g.nodes.length - 1);
    g.edges.forEach((e, i) => {
      expect(e.source).toBe(g.nodes[i].id);
      expect(e.target).toBe(g.nodes[i + 1].id);
    });
    expect(new Set(g.edges.map((e) => e.id)).size).toBe(g.edges.length);
  });

  it('shows every non-blank script at its hook', () => {
    const doc = clone(sample);
    doc.scripts = { pre_build: 'a', post_build: 'b', post_push: '  ', post_deploy: 'd\nmore' };
    const g = documentToGraph(doc);
    expect(ids(g)).toEqual([
      'source', 'pre_build', 'scanner:detect_secrets', 'build', 'post_build', 'push',
      'deploy:0', 'gate:1', 'deploy:1', 'gate:2', 'deploy:2', 'post_deploy', 'end',
    ]);
    expect(node(g, 'post_deploy').data.summary).toBe('d …');
    expect(graphToDocument(g).scripts).toEqual(doc.scripts);
  });

  it('has no build or push for a pre-built image, and keeps their settings', () => {
    const doc = clone(sample);
    doc.source = { kind: 'image', trigger: 'manual', branches: [], tags: [], pull_requests: false, image: 'nginx:1.27' };
    doc.scripts = { pre_build: 'x', post_build: 'y', post_push: 'z', post_deploy: 'w' };
    const g = documentToGraph(doc);
    expect(ids(g)).toEqual(['source', 'deploy:0', 'gate:1', 'deploy:1', 'gate:2', 'deploy:2', 'post_deploy', 'end']);
    expect(node(g, 'source').data).toMatchObject({ title: 'Pre-built image', summary: 'nginx:1.27' });
    expect(graphToDocument(g)).toEqual(doc);
  });
});

describe('layoutGraph', () => {
  it('places the pipeline left to right in order, on one line, without overlaps', () => {
    fc.assert(
      fc.property(documentArb, (doc) => {
        const g = documentToGraph(doc);
        const nodes = layoutGraph(g.nodes, g.edges);
        for (let i = 1; i < nodes.length; i += 1) {
          const prev = nodes[i - 1];
          expect(nodes[i].position.x).toBeGreaterThanOrEqual(prev.position.x + prev.width);
        }
      }),
      { numRuns: 50 },
    );
  }, 60000);
});
