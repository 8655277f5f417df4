// The properties panel: every field of the document, for the selected node or the workflow.
import { useEffect, useId, useLayoutEffect, useMemo, useRef, useState } from 'react';
import CodeEditor from './LazyCodeEditor.jsx';
import { BUILDER_LABELS, PIPELINE_LABELS, PLATFORM_LABELS, SCANNERS, SCRIPT_TITLES, envIndex, hiddenScripts, nodeKind } from './graph.js';
import { errorsByNode, errorsFor, getIn } from './edits.js';
import { matchingRule } from './branchMatch.js';
import { nextRunsIn, timeZoneNames } from './cronPreview.js';

function Errors({ id, errors }) {
  if (!errors.length) return null;
  return (
    <div id={id} className="wfb-field__error" role="alert" data-testid="field-error">
      {errors.map((e) => (
        <div key={`${e.field}:${e.message}`} data-error-field={e.field}>
          {e.message}
        </div>
      ))}
    </div>
  );
}

/**
 * The server's errors for this panel that no field above displayed (a field this pipeline hides,
 * e.g. pull requests on a pre-built image), listed with their path so none goes unseen. Found
 * after render: whatever the panel drew is what the user saw.
 */
function UnshownErrors({ errors }) {
  const ref = useRef(null);
  const [unshown, setUnshown] = useState([]);
  useLayoutEffect(() => {
    const panel = ref.current?.closest('.wfb-panel');
    const drawn = new Set(
      [...(panel?.querySelectorAll('[data-error-field]') || [])].filter((el) => !ref.current.contains(el)).map((el) => el.dataset.errorField),
    );
    const next = errors.filter((e) => !drawn.has(e.field));
    setUnshown((old) => (JSON.stringify(old) === JSON.stringify(next) ? old : next));
  });
  return (
    <div ref={ref}>
      {unshown.length > 0 && (
        <div className="wfb-field__error" role="alert" data-testid="unshown-errors">
          {unshown.map((e) => (
            <div key={`${e.field}:${e.message}`}>
              <code>{e.field || 'workflow'}</code>: {e.message}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

/**
 * One labelled control bound to a document path; server errors for the path show under it.
 * `onValue(value)` replaces the plain set (a change that touches more than the path);
 * `suggestions` gives a text field a list to pick from.
 */
function Field({ ctx, path, label, type = 'text', options, help, disabled, parse, testid, onValue, suggestions }) {
  const id = useId();
  const errors = errorsFor(ctx.errors, path);
  const value = getIn(ctx.doc, path);
  const off = ctx.readOnly || disabled;
  const set = onValue || ((v) => ctx.set(path, v));
  const common = {
    id,
    disabled: off,
    'aria-invalid': errors.length ? 'true' : undefined,
    'aria-describedby': errors.length ? `${id}-err` : help ? `${id}-help` : undefined,
    'data-testid': testid || `field-${path}`,
  };
  let control;
  if (type === 'checkbox') {
    control = <input type="checkbox" {...common} checked={Boolean(value)} onChange={(e) => set(e.target.checked)} />;
  } else if (type === 'select') {
    control = (
      <select {...common} value={value ?? ''} onChange={(e) => set(parse ? parse(e.target.value) : e.target.value)}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    );
  } else if (type === 'number') {
    control = (
      <input
        type="number"
        {...common}
        value={value ?? ''}
        onChange={(e) => set(e.target.value === '' ? null : Number(e.target.value))}
      />
    );
  } else {
    control = (
      <>
        <input
          type="text"
          {...common}
          list={suggestions ? `${id}-list` : undefined}
          value={value ?? ''}
          onChange={(e) => set(parse ? parse(e.target.value) : e.target.value)}
        />
        {suggestions && (
          <datalist id={`${id}-list`}>
            {suggestions.map((name) => (
              <option key={name} value={name} />
            ))}
          </datalist>
        )}
      </>
    );
  }
  return (
    <div className={`wfb-field${type === 'checkbox' ? ' wfb-field--check' : ''}${errors.length ? ' wfb-field--invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {control}
      {help && !errors.length && (
        <div id={`${id}-help`} className="wfb-field__help">
          {help}
        </div>
      )}
      <Errors id={`${id}-err`} errors={errors} />
    </div>
  );
}

const opts = (pairs) => Object.entries(pairs);

function BranchTester({ rules }) {
  const [name, setName] = useState('release/1.2');
  const id = useId();
  const rule = matchingRule(name, rules);
  return (
    <div className="wfb-field">
      <label htmlFor={id}>Does this branch match?</label>
      <input id={id} type="text" value={name} onChange={(e) => setName(e.target.value)} data-testid="branch-tester" />
      <div className="wfb-field__help" aria-live="polite" data-testid="branch-tester-result">
        {name ? (rule ? `Yes: "${rule.pattern}" (${rule.match}) matches ${name}` : `No rule matches ${name}`) : ''}
      </div>
    </div>
  );
}

function TagsField({ ctx }) {
  const id = useId();
  const tags = ctx.doc.source?.tags || [];
  const [text, setText] = useState(tags.join(', '));
  const errors = errorsFor(ctx.errors, 'source.tags');
  const parsed = text.split(',').map((t) => t.trim()).filter(Boolean);
  // Another view (undo, YAML) changed the tags: show them.
  if (parsed.join(',') !== tags.join(',') && document.activeElement?.id !== id) setText(tags.join(', '));
  return (
    <div className={`wfb-field${errors.length ? ' wfb-field--invalid' : ''}`}>
      <label htmlFor={id}>Tag patterns (comma-separated)</label>
      <input
        id={id}
        type="text"
        disabled={ctx.readOnly}
        value={text}
        data-testid="field-source.tags"
        onChange={(e) => {
          setText(e.target.value);
          ctx.set('source.tags', e.target.value.split(',').map((t) => t.trim()).filter(Boolean));
        }}
      />
      <Errors id={`${id}-err`} errors={errors} />
    </div>
  );
}

function SourcePanel({ ctx }) {
  const source = ctx.doc.source || {};
  const branches = source.branches || [];
  return (
    <>
      <Field ctx={ctx} path="source.kind" label="Source" type="select" options={opts({ git: 'Git repository', image: 'Pre-built image (deploy-only)' })} />
      {source.kind === 'image' ? (
        <>
          <Field ctx={ctx} path="source.image" label="Image reference" help="e.g. registry.example.org/team/app:1.4.2; empty: the service's image" parse={(v) => v || null} />
          {source.pull_requests && <Field ctx={ctx} path="source.pull_requests" label="Build pull requests (CI only)" type="checkbox" />}
        </>
      ) : (
        <>
          <Field ctx={ctx} path="source.trigger" label="Trigger" type="select" options={opts({ automatic: 'Automatic (webhook)', manual: 'Manual' })} />
          <fieldset className="wfb-fieldset">
            <legend>Branch rules</legend>
            {branches.map((rule, i) => (
              <div className="wfb-row" key={i}>
                <Field ctx={ctx} path={`source.branches[${i}].pattern`} label={`Pattern ${i + 1}`} />
                <Field ctx={ctx} path={`source.branches[${i}].match`} label="Match" type="select" options={opts({ exact: 'exact', wildcard: 'wildcard' })} />
                {!ctx.readOnly && (
                  <button type="button" className="wfb-link" onClick={() => ctx.set('source.branches', branches.filter((_, j) => j !== i))}>
                    Remove rule {i + 1}
                  </button>
                )}
              </div>
            ))}
            <Errors id="source-branches-err" errors={ctx.errors.filter((e) => e.field === 'source.branches')} />
            {!ctx.readOnly && (
              <button type="button" onClick={() => ctx.set('source.branches', [...branches, { pattern: '', match: 'exact' }])}>
                Add branch rule
              </button>
            )}
            <BranchTester rules={branches} />
          </fieldset>
          <TagsField ctx={ctx} />
          <Field ctx={ctx} path="source.pull_requests" label="Build pull requests (CI only)" type="checkbox" />
        </>
      )}
      <Field
        ctx={ctx}
        path="source.concurrency"
        label="When a run is already going"
        type="select"
        options={opts({ queue: 'Queue (one after another)', cancel_in_progress: 'Cancel the older run on the same branch' })}
      />
    </>
  );
}

function BuildPanel({ ctx }) {
  const build = ctx.doc.build || {};
  const kubernetes = build.builder === 'kubernetes';
  const clusters = ctx.config.environments.filter((e) => e.target === 'kubernetes');
  const choices = [['', '(choose an environment)'], ...clusters.map((e) => [e.name, e.is_active === false ? `${e.name} (inactive)` : e.name])];
  const current = build.builder_environment;
  if (current && !clusters.some((e) => e.name === current)) choices.push([current, `${current} (not a Kubernetes environment of this project)`]);
  // Back to the local engine: the cluster no longer applies (the server refuses one there).
  const setBuilder = (builder) => ctx.set('build', { ...build, builder, builder_environment: builder === 'kubernetes' ? current || null : null });
  return (
    <>
      <Field ctx={ctx} path="build.dockerfile" label="Dockerfile path" />
      <Field ctx={ctx} path="build.context" label="Build context" />
      <Field
        ctx={ctx}
        path="build.platform"
        label="Platform"
        type="select"
        options={opts(PLATFORM_LABELS)}
        help={build.platform?.includes(',') ? 'Built once per architecture and pushed as one manifest list under the same tag.' : undefined}
      />
      <Field ctx={ctx} path="build.builder" label="Builder" type="select" options={opts(BUILDER_LABELS)} onValue={setBuilder} />
      {(kubernetes || current || errorsFor(ctx.errors, 'build.builder_environment').length > 0) && (
        <Field
          ctx={ctx}
          path="build.builder_environment"
          label="Builder environment (its cluster runs the build pod)"
          type="select"
          options={choices}
          parse={(v) => v || null}
          help={clusters.length ? undefined : 'This project has no Kubernetes environment yet.'}
        />
      )}
      <Field ctx={ctx} path="build.cache" label="Layer cache" type="checkbox" />
      <Field ctx={ctx} path="build.spot_instances" label="Spot instances" type="checkbox" />
      <Field ctx={ctx} path="build.volume_size_gb" label="Volume size (GB)" type="number" />
    </>
  );
}

function PushPanel({ ctx }) {
  const registries = [['', '(choose a registry)'], ...ctx.config.registries.map((r) => [r, r])];
  return (
    <>
      <Field ctx={ctx} path="push.registry" label="Registry" type="select" options={registries} parse={(v) => v || null} />
      <Field ctx={ctx} path="push.repository" label="Repository" help="e.g. team/app" />
      <Field ctx={ctx} path="push.tag_template" label="Tag template" help="{branch} {sha} {short_sha} {number} {timestamp}" />
    </>
  );
}

function Checklist({ ctx, path, label, choices, disabled }) {
  const selected = getIn(ctx.doc, path) || [];
  const errors = errorsFor(ctx.errors, path);
  const id = useId();
  const toggle = (name, on) => ctx.set(path, on ? [...selected, name].sort() : selected.filter((n) => n !== name));
  return (
    <fieldset
      className={`wfb-fieldset${errors.length ? ' wfb-field--invalid' : ''}`}
      aria-describedby={errors.length ? `${id}-err` : undefined}
      data-testid={`field-${path}`}
    >
      <legend>{label}</legend>
      {choices.length === 0 && <div className="wfb-field__help">None in this project.</div>}
      {choices.map((name) => (
        <label key={name} className="wfb-check">
          <input
            type="checkbox"
            checked={selected.includes(name)}
            disabled={ctx.readOnly || disabled}
            onChange={(e) => toggle(name, e.target.checked)}
            data-testid={`approver-${name}`}
          />{' '}
          {name}
        </label>
      ))}
      {selected.filter((n) => !choices.includes(n)).map((name) => (
        <div key={name} className="wfb-field__help">{name} (not a project member)</div>
      ))}
      <Errors id={`${id}-err`} errors={errors} />
    </fieldset>
  );
}

function EnvironmentPanel({ ctx, index, gate }) {
  const base = `deploy.environments[${index}]`;
  const envs = ctx.doc.deploy?.environments || [];
  const approversOff = !ctx.config.canEditApprovers;
  const envChoices = ctx.config.environments.map((e) => [e.name, e.is_active === false ? `${e.name} (inactive)` : e.name]);
  const current = envs[index]?.environment;
  if (current && !envChoices.some(([n]) => n === current)) envChoices.push([current, `${current} (not in project)`]);
  const gateFields = (
    <>
      <Field ctx={ctx} path={`${base}.mode`} label="Deploy" type="select" options={opts({ automatic: 'Automatically', manual: 'Manually (someone starts it)' })} />
      <Field ctx={ctx} path={`${base}.required_approvals`} label="Required approvals" type="number" disabled={approversOff} />
      <Checklist ctx={ctx} path={`${base}.approvers.users`} label="Approvers: users" choices={ctx.config.users} disabled={approversOff} />
      <Checklist ctx={ctx} path={`${base}.approvers.groups`} label="Approvers: groups" choices={ctx.config.groups} disabled={approversOff} />
      <Errors id={`${base}-approvers-err`} errors={ctx.errors.filter((e) => e.field === `${base}.approvers`)} />
      {approversOff && !ctx.readOnly && (
        <div className="wfb-field__help">Changing approvers needs the "Add approver to workflows" permission.</div>
      )}
      <Field ctx={ctx} path={`${base}.approval_expiry_hours`} label="Approval expires after (hours)" type="number" disabled={approversOff} />
      <Field ctx={ctx} path={`${base}.allow_self_approval`} label="Allow self-approval" type="checkbox" disabled={approversOff} />
    </>
  );
  return (
    <>
      <Field ctx={ctx} path={`${base}.environment`} label="Environment" type="select" options={envChoices} />
      {gate ? gateFields : <Field ctx={ctx} path={`${base}.auto_rollback`} label="Roll back automatically on failure" type="checkbox" />}
      {gate ? <Field ctx={ctx} path={`${base}.auto_rollback`} label="Roll back automatically on failure" type="checkbox" /> : gateFields}
      {!ctx.readOnly && (
        <div className="wfb-row">
          <button type="button" disabled={index === 0} onClick={() => ctx.move(index, index - 1)}>
            Move earlier
          </button>
          <button type="button" disabled={index === envs.length - 1} onClick={() => ctx.move(index, index + 1)}>
            Move later
          </button>
        </div>
      )}
    </>
  );
}

function ScriptPanel({ ctx, hook }) {
  const path = `scripts.${hook}`;
  const errors = errorsFor(ctx.errors, path);
  const value = getIn(ctx.doc, path) || '';
  return (
    <div className={`wfb-field${errors.length ? ' wfb-field--invalid' : ''}`}>
      <div className="wfb-field__label" id={`label-${hook}`}>
        Script (sh; runs in the build image, fails the stage on a non-zero exit)
      </div>
      <CodeEditor
        language="shell"
        value={value}
        readOnly={ctx.readOnly}
        label={`${SCRIPT_TITLES[hook]} (shell)`}
        testid={`script-editor-${hook}`}
        describedBy={errors.length ? `err-${hook}` : undefined}
        onChange={(text) => text !== getIn(ctx.docRef.current, path) && ctx.set(path, text)}
      />
      <Errors id={`err-${hook}`} errors={errors} />
    </div>
  );
}

const THRESHOLDS = opts({ low: 'Low or worse', medium: 'Medium or worse', high: 'High or worse', critical: 'Critical only', never: 'Never fail' });

// croner loads when a schedule is first shown (it is not needed to draw the pipeline).
let cronModule = null;

let zoneNames = null;

function CronPreview({ schedule, timeZone }) {
  const [Cron, setCron] = useState(() => cronModule?.Cron || null);
  useEffect(() => {
    if (Cron || !schedule) return undefined;
    let live = true;
    import('croner').then((mod) => {
      cronModule = mod;
      if (live) setCron(() => mod.Cron);
    });
    return () => {
      live = false;
    };
  }, [Cron, schedule]);
  const next = useMemo(() => {
    if (!schedule || !Cron) return null;
    return nextRunsIn(Cron, schedule, timeZone);
  }, [schedule, timeZone, Cron]);
  if (!next) return null;
  return (
    <div className="wfb-field__help" data-testid="cron-next" aria-live="polite">
      {next.error || `Next runs (${timeZone || 'UTC'}): ${next.runs.join(', ')}`}
    </div>
  );
}

function Variables({ ctx }) {
  const vars = ctx.doc.variables || [];
  const add = () => ctx.set('variables', [...vars, { key: '', value: '', secret: false, scope: 'build', secret_manager: null, secret_ref: '' }]);
  return (
    <fieldset className="wfb-fieldset">
      <legend>CI variables</legend>
      {vars.map((v, i) => {
        const base = `variables[${i}]`;
        return (
          <div className="wfb-var" key={i} data-testid={`variable-${i}`}>
            <Field ctx={ctx} path={`${base}.key`} label="Name" />
            {v.secret_manager ? (
              <Field ctx={ctx} path={`${base}.secret_ref`} label="Secret name in the manager" />
            ) : v.secret ? (
              <SecretValue ctx={ctx} path={`${base}.value`} />
            ) : (
              <Field ctx={ctx} path={`${base}.value`} label="Value" />
            )}
            <Field ctx={ctx} path={`${base}.secret`} label="Secret" type="checkbox" />
            <Field ctx={ctx} path={`${base}.scope`} label="Available" type="select" options={opts({ build: 'at build time', runtime: 'at runtime', both: 'both' })} />
            <Field
              ctx={ctx}
              path={`${base}.secret_manager`}
              label="Read from"
              type="select"
              options={[['', 'stored here'], ['aws', 'AWS Secrets Manager'], ['gcp', 'GCP Secret Manager']]}
              parse={(x) => x || null}
            />
            {!ctx.readOnly && (
              <button type="button" className="wfb-link" onClick={() => ctx.set('variables', vars.filter((_, j) => j !== i))}>
                Remove {v.key || `variable ${i + 1}`}
              </button>
            )}
          </div>
        );
      })}
      {!ctx.readOnly && (
        <button type="button" onClick={add}>
          Add variable
        </button>
      )}
    </fieldset>
  );
}

/** Secret values are write-only: the server never sends them, the field shows "set". */
function SecretValue({ ctx, path }) {
  const id = useId();
  const value = getIn(ctx.doc, path);
  const errors = errorsFor(ctx.errors, path);
  return (
    <div className="wfb-field">
      <label htmlFor={id}>Secret value</label>
      <input
        id={id}
        type="password"
        autoComplete="new-password"
        disabled={ctx.readOnly}
        placeholder={value === null ? 'set (type to replace)' : ''}
        value={value || ''}
        onChange={(e) => ctx.set(path, e.target.value === '' ? null : e.target.value)}
        data-testid={`field-${path}`}
      />
      {value === null && <div className="wfb-field__help">set</div>}
      <Errors id={`${id}-err`} errors={errors} />
    </div>
  );
}

/** Scripts kept in the document at hooks this pipeline does not have: said why, still editable. */
function HiddenScripts({ ctx }) {
  const hidden = hiddenScripts(ctx.doc);
  if (!hidden.length) return null;
  return (
    <fieldset className="wfb-fieldset" data-testid="hidden-scripts">
      <legend>Scripts this pipeline does not run</legend>
      {hidden.map(({ hook, reason }) => (
        <div key={hook} data-testid={`hidden-script-${hook}`}>
          <div className="wfb-field__help">
            <strong>{SCRIPT_TITLES[hook]}</strong>: {reason} It is kept, and runs again if the pipeline gets that hook back.
          </div>
          <ScriptPanel ctx={ctx} hook={hook} />
          {!ctx.readOnly && (
            <button type="button" className="wfb-link" onClick={() => ctx.set(`scripts.${hook}`, '')} data-testid={`clear-script-${hook}`}>
              Clear the {SCRIPT_TITLES[hook].toLowerCase()}
            </button>
          )}
        </div>
      ))}
    </fieldset>
  );
}

/** Build and Push have no node for a pre-built image; their settings stay in the document. */
function UnusedBuildSettings({ ctx }) {
  const errors = [...errorsFor(ctx.errors, 'build'), ...errorsFor(ctx.errors, 'push')];
  return (
    <details className="wfb-fieldset" open={errors.length > 0 || undefined} data-testid="unused-build-settings">
      <summary>Build and push settings (not used: the source is a pre-built image)</summary>
      <BuildPanel ctx={ctx} />
      <PushPanel ctx={ctx} />
    </details>
  );
}

function WorkflowPanel({ ctx }) {
  const deploy = ctx.doc.deploy || {};
  // A CI workflow shows its deploy settings only when the server found a problem there.
  const cd = ctx.doc.pipeline_type !== 'ci' || errorsFor(ctx.errors, 'deploy').some((e) => e.field !== 'deploy.environments');
  zoneNames = zoneNames || timeZoneNames();
  return (
    <>
      <Field ctx={ctx} path="name" label="Workflow name" />
      <Field ctx={ctx} path="pipeline_type" label="Pipeline type" type="select" options={opts(PIPELINE_LABELS)} />
      <Field ctx={ctx} path="stage_timeout_minutes" label="Stage timeout (minutes)" type="number" />
      <Errors id="wf-env-err" errors={ctx.errors.filter((e) => e.field === 'deploy.environments')} />
      {cd && (
        <fieldset className="wfb-fieldset">
          <legend>Deployment</legend>
          <Field ctx={ctx} path="deploy.port" label="Service port" type="number" />
          <Field ctx={ctx} path="deploy.replicas" label="Replicas" type="number" />
          <Field ctx={ctx} path="deploy.health_check_path" label="Health check path" />
          {['cpu_request', 'memory_request', 'cpu_limit', 'memory_limit'].map((key) => (
            <Field key={key} ctx={ctx} path={`deploy.resources.${key}`} label={key.replace('_', ' ')} />
          ))}
          <Field ctx={ctx} path="deploy.cron_schedule" label="Cron schedule (Cron CD)" parse={(v) => v || null} help="minute hour day month weekday, e.g. */15 * * * *" />
          <Field
            ctx={ctx}
            path="deploy.cron_time_zone"
            label="Schedule time zone (IANA)"
            suggestions={zoneNames}
            help="The schedule runs on this zone's wall clock, daylight saving included, e.g. Europe/Paris"
          />
          <CronPreview schedule={deploy.cron_schedule} timeZone={deploy.cron_time_zone} />
          <Field ctx={ctx} path="deploy.cron_concurrency" label="Cron concurrency" type="select" options={opts({ Allow: 'Allow', Forbid: 'Forbid', Replace: 'Replace' })} />
        </fieldset>
      )}
      <fieldset className="wfb-fieldset">
        <legend>Scanners</legend>
        {SCANNERS.map(([key, label]) => (
          <Field key={key} ctx={ctx} path={`scanners.${key}`} label={label} type="checkbox" />
        ))}
        <Field ctx={ctx} path="scanners.fail_on" label="Fail the run on findings of" type="select" options={THRESHOLDS} />
      </fieldset>
      <Variables ctx={ctx} />
      <HiddenScripts ctx={ctx} />
      {ctx.doc.source?.kind === 'image' && <UnusedBuildSettings ctx={ctx} />}
    </>
  );
}

export default function Panel({ ctx, selected }) {
  const kind = nodeKind(selected);
  let title = 'Workflow settings';
  let body = <WorkflowPanel ctx={ctx} />;
  if (kind === 'source') [title, body] = ['Source', <SourcePanel ctx={ctx} />];
  else if (kind === 'build') [title, body] = ['Build', <BuildPanel ctx={ctx} />];
  else if (kind === 'push') [title, body] = ['Push', <PushPanel ctx={ctx} />];
  else if (kind === 'deploy' || kind === 'gate') {
    const index = envIndex(selected);
    const name = ctx.doc.deploy?.environments?.[index]?.environment;
    title = kind === 'gate' ? `Gate before ${name}` : `Deploy to ${name}`;
    body = <EnvironmentPanel ctx={ctx} index={index} gate={kind === 'gate'} />;
  } else if (kind === 'scanner') {
    const label = SCANNERS.find(([k]) => `scanner:${k}` === selected)?.[1];
    title = `Scan: ${label}`;
    body = (
      <>
        <Field ctx={ctx} path="scanners.fail_on" label="Fail the run on findings of (all scanners)" type="select" options={THRESHOLDS} />
      </>
    );
  } else if (SCRIPT_TITLES[kind]) [title, body] = [SCRIPT_TITLES[kind], <ScriptPanel ctx={ctx} hook={kind} />];
  const removable = !ctx.readOnly && selected !== 'workflow' && !['source', 'build', 'push', 'end'].includes(kind);
  return (
    <section className="wfb-panel" aria-labelledby="wfb-panel-title" data-testid="panel">
      <h2 id="wfb-panel-title">{title}</h2>
      <UnshownErrors errors={errorsByNode(ctx.doc, ctx.errors)[selected || 'workflow'] || []} />
      {body}
      {removable && (
        <button type="button" className="wfb-danger" onClick={() => ctx.remove(selected)} data-testid="delete-node">
          Delete {title.toLowerCase()}
        </button>
      )}
    </section>
  );
}
