"""What starts and cancels runs, above the run lifecycle (executions.services): `runs` for
people and programs (Run, re-run, rollback), `webhooks` for deliveries from git hosts. The
webhook doors are here too, in the surfaces layer: the hook URL (`webhook_views`), its REST API
(`webhook_api`) and their URLs (`urls`)."""
