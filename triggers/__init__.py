"""What starts and cancels runs, above the run lifecycle (executions.services): `runs` for
people and programs (Run, re-run, rollback), `webhooks` for deliveries from git hosts."""
