"""A double of the sonar-scanner CLI for tests: NOT sonar-scanner. It analyses nothing; it does
what the stage relies on: reads `-D` properties and SONAR_HOST_URL / SONAR_TOKEN from its
environment, uploads to `/api/ce/submit` (here its arguments and the files it sees, as JSON),
and writes `<sonar.working.directory>/report-task.txt` with the `ceTaskId`, as the real one does.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.request


def main() -> int:
    props = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("-D") and "=" in a)
    host, token = os.environ["SONAR_HOST_URL"], os.environ.get("SONAR_TOKEN", "")
    key = props["sonar.projectKey"]
    body = {"argv": sys.argv, "files": sorted(os.listdir("."))}
    request = urllib.request.Request(
        f"{host}/api/ce/submit?projectKey={key}", data=json.dumps(body).encode(), method="POST"
    )
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{token}:".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        task = json.load(response)["taskId"]
    workdir = props.get("sonar.working.directory", ".scannerwork")
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "report-task.txt"), "w") as out:
        out.write(f"projectKey={key}\nserverUrl={host}\nceTaskId={task}\n")
    print("INFO: ANALYSIS SUCCESSFUL")
    print("INFO: EXECUTION SUCCESS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
