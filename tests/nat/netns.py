"""Network namespaces with real kernel NAT, for the NAT-traversal tests.

Topology (every name carries a per-run prefix so runs never collide):

    inet   the public internet: forwards between its links; 100.64.0.10/32 on
           its loopback is where public nodes listen
    natN   a home router: WAN 100.64.N.2/24 (to inet's 100.64.N.1), LAN
           10.N.0.1/24, iptables MASQUERADE on the WAN (with --random-fully
           for a NAT that randomises ports) and a firewall that drops
           unsolicited inbound TCP (as home routers do: no RST to betray it)
    lanN   a private host at 10.N.0.2 behind natN

Needs root and `ip` + `iptables`; `available()` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field

PUBLIC_IP = "100.64.0.10"


def available() -> str | None:
    """None if namespaces can be built here, else the reason."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (apt install iproute2 iptables)"
    probe = f"bcaiprobe{os.getpid()}"
    ok = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
        return None
    return "`ip netns add` fails here (no CAP_SYS_ADMIN?)"


def sh(*args: str, ns: str | None = None) -> str:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
    return out.stdout


STALE = re.compile(r"^bc(?:aiprobe)?(\d+)(?:[a-z]\w*)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


def remove_stale() -> list[str]:
    """Deletes the namespaces of runs whose process is gone (a test run
    killed before its `close`), with whatever still runs in them; returns
    their names. A namespace whose creator's pid is alive is left alone."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    removed = []
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        match = STALE.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        removed.append(name)
    return removed


@dataclass
class Net:
    # the whole pid (≤ 7 digits: veth names stay within 15 characters), so that
    # `remove_stale` tells a dead run's namespaces from a live one's
    prefix: str = field(default_factory=lambda: f"bc{os.getpid()}")
    namespaces: list[str] = field(default_factory=list)
    links: int = 0
    wan: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        remove_stale()  # a killed run's namespaces (and nodes) would compete with this one

    def ns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "link", "set", "lo", "up", ns=full)
        return full

    def link(self, a: str, a_ip: str, b: str, b_ip: str) -> tuple[str, str]:
        """A veth pair between namespaces a and b with the given cidrs."""
        self.links += 1
        ia, ib = f"{self.prefix}a{self.links}", f"{self.prefix}b{self.links}"
        sh("ip", "link", "add", ia, "type", "veth", "peer", "name", ib)
        sh("ip", "link", "set", ia, "netns", a)
        sh("ip", "link", "set", ib, "netns", b)
        for ns, dev, ip in ((a, ia, a_ip), (b, ib, b_ip)):
            sh("ip", "addr", "add", ip, "dev", dev, ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
        return ia, ib

    def internet(self) -> str:
        inet = self.ns("inet")
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=inet)
        sh("ip", "addr", "add", f"{PUBLIC_IP}/32", "dev", "lo", ns=inet)
        return inet

    def home(self, inet: str, n: int, *, random_ports: bool = False) -> tuple[str, str]:
        """A NAT router and one private host behind it; returns (nat, host).
        The router's WAN device name is kept in `self.wan[nat]`."""
        nat, host = self.ns(f"nat{n}"), self.ns(f"lan{n}")
        _, wan = self.link(inet, f"100.64.{n}.1/24", nat, f"100.64.{n}.2/24")
        lan, _ = self.link(nat, f"10.{n}.0.1/24", host, f"10.{n}.0.2/24")
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=nat)
        sh("ip", "route", "add", "default", "via", f"100.64.{n}.1", ns=nat)
        sh("ip", "route", "add", "default", "via", f"10.{n}.0.1", ns=host)
        masquerade = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", wan, "-j", "MASQUERADE"]
        if random_ports:
            masquerade.append("--random-fully")
        sh(*masquerade, ns=nat)
        # a home router's firewall: replies pass, unsolicited TCP is dropped
        for chain in ("INPUT", "FORWARD"):
            sh(
                "iptables",
                "-A",
                chain,
                "-i",
                wan,
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
                ns=nat,
            )
            sh("iptables", "-A", chain, "-i", wan, "-p", "tcp", "-j", "DROP", ns=nat)
        del lan
        self.wan[nat] = wan
        return nat, host

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()


def partition(ns: str, other_ip: str) -> None:
    """Drops everything between `ns` and `other_ip`."""
    sh("iptables", "-A", "INPUT", "-s", other_ip, "-j", "DROP", ns=ns)
    sh("iptables", "-A", "OUTPUT", "-d", other_ip, "-j", "DROP", ns=ns)


def heal(ns: str, other_ip: str) -> None:
    sh("iptables", "-D", "INPUT", "-s", other_ip, "-j", "DROP", ns=ns)
    sh("iptables", "-D", "OUTPUT", "-d", other_ip, "-j", "DROP", ns=ns)


def forward_port(wan_dev: str, external: int, client: str, internal: int) -> None:
    """What a gateway does for a port mapping (run in its namespace): DNAT
    the external port to the client and let it through the firewall."""
    for rule in (
        [
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-i",
            wan_dev,
            "-p",
            "tcp",
            "--dport",
            str(external),
            "-j",
            "DNAT",
            "--to-destination",
            f"{client}:{internal}",
        ],
        [
            "-I",
            "FORWARD",
            "1",
            "-i",
            wan_dev,
            "-p",
            "tcp",
            "-d",
            client,
            "--dport",
            str(internal),
            "-j",
            "ACCEPT",
        ],
    ):
        subprocess.run(["iptables", *rule], check=True)
