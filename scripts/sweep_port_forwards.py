"""Removes the port forwards that podman's CNI networks left behind for pods no longer running.

Each pod played with a host port gets iptables NAT rules from CNI's portmap plugin (a rule in
CNI-HOSTPORT-DNAT, commented with the infra container's id, jumping to a CNI-DN-* chain that
DNATs the host port to the pod's address). podman deletes them when it tears the pod down. When
the processes are killed instead (a session or a CI run that ends mid-test, the machine's
processes stopped under a running engine), the rules stay in the kernel, and a later pod
published on the same host port is shadowed by them: connections to 127.0.0.1:<port> go to an
address nobody answers on. (Shown here: after a kill -9 of a pod's processes, `podman pod rm
-f` left its rules. It fits a CI failure seen once, every release on one host port "did not
answer within 20 s" while other ports worked, though that cause was not confirmed there.)

Run by `scripts/services start` before it starts podman; root only, a no-op without iptables.
A container counts as running when podman lists it as running and its process exists.

    python3 scripts/sweep_port_forwards.py     prints "removed N leaked port forward(s)" if any
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

ID = re.compile(r'id: \\?"([0-9a-f]{64})')


def running_containers() -> set[str]:
    """Full ids of the containers podman says run and whose process is alive."""
    out = subprocess.run(
        ["podman", "ps", "--no-trunc", "--format", "{{.ID}} {{.Pid}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    alive = set()
    for line in out.splitlines():
        cid, _, pid = line.partition(" ")
        if pid.isdigit() and int(pid) > 0 and process_runs(int(pid)):
            alive.add(cid)
    return alive


def process_runs(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (killed, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["iptables", "-w", "-t", "nat", *args], capture_output=True, text=True, timeout=30
    )


def leaked_rules(rules: str, alive: set[str]) -> list[tuple[list[str], str]]:
    """(the rule's words after -A, the chain it jumps to) for each CNI rule of a dead container
    in the DNAT and POSTROUTING chains."""
    leaked = []
    for line in rules.splitlines():
        words = shlex.split(line)
        if (
            len(words) < 2
            or words[0] != "-A"
            or words[1] not in ("CNI-HOSTPORT-DNAT", "POSTROUTING")
        ):
            continue
        match = ID.search(line)
        if not match or match.group(1) in alive or "-j" not in words:
            continue
        target = words[words.index("-j") + 1]
        if target.startswith("CNI-"):
            leaked.append((words[1:], target))
    return leaked


def main() -> int:
    if os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("podman"):
        return 0
    listed = iptables("-S")
    if listed.returncode != 0 or "CNI-" not in listed.stdout:
        return 0
    try:
        alive = running_containers()
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"[services] port forwards not checked: podman ps failed: {exc}", file=sys.stderr)
        return 0
    leaked = leaked_rules(listed.stdout, alive)
    for words, chain in leaked:
        iptables("-D", *words)
        iptables("-F", chain)
        iptables("-X", chain)
    if leaked:
        print(
            f"[services] removed {len(leaked)} leaked port forward(s) of gone pods", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
