"""A real one-node SLURM cluster on localhost, with accounting, for the cluster tests.

Installs Debian's ``slurm-wlm``, ``slurmdbd``, ``munge`` and ``mariadb-server`` when they are missing, writes
``slurm.conf`` and ``slurmdbd.conf`` for this machine (its hostname, cores and memory, one partition, no GPU, no
cgroups) in a private folder, linked from /etc/slurm while it runs (refusing a machine that has its own), and
starts MariaDB on 127.0.0.1 (a private data folder and port), ``munged`` as the
``munge`` user, ``slurmdbd``, ``slurmctld`` and ``slurmd``. Registers a cluster, an account and the current user
with ``sacctmgr`` (the SLURM executor plugin reads job states with ``sacct``, which needs accounting storage),
waits until ``sinfo`` shows the node idle, and on exit stops only the processes it started.

Clients find the cluster through ``SLURM_CONF`` (:meth:`LocalSlurm.env`). As a script::

    python tests/slurm_cluster.py /tmp/slurm      # start, print the environment to use, wait for Ctrl-C
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
PARTITION = "main"
ACCOUNT = "sg3pipe"
CLUSTER = "sg3pipe"
DB_PORT = 33061
SLURMDBD_PORT = 6819
SLURMCTLD_PORT = 6817
SLURMD_PORT = 6818
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")  # munge's standard socket
SYSTEM_CONFIG = Path("/etc/slurm")  # where SLURM looks without SLURM_CONF


def install_when_missing() -> None:
    """apt-get install the SLURM, munge and MariaDB packages unless their daemons are already on the PATH."""
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd")):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], check=True, env=env, stdout=subprocess.DEVNULL)


def memory_mb() -> int:
    """The machine's memory in MB as slurmd counts it, less a margin for the system."""
    with open("/proc/meminfo") as file:
        total_kb = int(next(line for line in file if line.startswith("MemTotal")).split()[1])
    return int(total_kb / 1024 * 0.9)


class LocalSlurm:
    """The cluster's folder, configuration and processes; use :func:`local_slurm`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.host = socket.gethostname()
        self.cpus = os.cpu_count() or 1
        self.user = getpass.getuser()
        self.processes: list[subprocess.Popen] = []
        self.cleanup: list[Path] = []  # folders and links outside ``folder`` to remove on stop
        self.conf = folder / "etc" / "slurm.conf"

    def env(self) -> dict[str, str]:
        """The environment of a client of this cluster (sbatch, sacct, snakemake)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, env=self.env(), check=check, timeout=120)

    # Configuration ------------------------------------------------------------------------------------------

    def write_config(self) -> None:
        for name in ("etc", "state", "spool", "log", "run", "db"):
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        f = self.folder
        self.conf.write_text(
            "\n".join(
                [
                    f"ClusterName={CLUSTER}",
                    f"SlurmctldHost={self.host}",
                    f"SlurmUser={self.user}",
                    "AuthType=auth/munge",
                    f"SlurmctldPort={SLURMCTLD_PORT}",
                    f"SlurmdPort={SLURMD_PORT}",
                    "ProctrackType=proctrack/linuxproc",  # no cgroups here
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=localhost",
                    f"AccountingStoragePort={SLURMDBD_PORT}",
                    "AccountingStorageEnforce=associations",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    "KillWait=5",
                    "InactiveLimit=0",
                    "MinJobAge=60",
                    f"StateSaveLocation={f / 'state'}",
                    f"SlurmdSpoolDir={f / 'spool'}",
                    f"SlurmctldPidFile={f / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={f / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory_mb()} State=UNKNOWN",
                    f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        dbd = self.conf.with_name("slurmdbd.conf")
        dbd.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    "DbdHost=localhost",
                    f"DbdPort={SLURMDBD_PORT}",
                    f"SlurmUser={self.user}",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={DB_PORT}",
                    "StorageUser=root",
                    "StorageLoc=slurm_acct_db",
                    f"PidFile={f / 'run' / 'slurmdbd.pid'}",
                    f"LogFile={f / 'log' / 'slurmdbd.log'}",
                    "",
                ]
            )
        )
        dbd.chmod(0o600)  # slurmdbd refuses a world-readable config
        # The config must also be at SLURM's standard path: snakemake-executor-plugin-slurm-jobstep (0.6) drops
        # every SLURM_* variable, SLURM_CONF included, before its srun inside a job.
        for name in ("slurm.conf", "slurmdbd.conf"):
            standard = SYSTEM_CONFIG / name
            if standard.exists() or standard.is_symlink():
                raise RuntimeError(f"{standard} exists: this machine has a SLURM configuration; test elsewhere")
            standard.parent.mkdir(parents=True, exist_ok=True)
            standard.symlink_to(self.conf.with_name(name))
            self.cleanup.append(standard)

    # Processes ----------------------------------------------------------------------------------------------

    def start(self, name: str, command: list[str]) -> None:
        log = open(self.folder / "log" / f"{name}.out", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
        )
        process.name = name
        self.processes.append(process)

    def wait_for(self, what: str, ready, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    log = (self.folder / "log" / f"{process.name}.out").read_text()[-2000:]
                    raise RuntimeError(f"{process.name} exited ({process.returncode}) before {what} was ready:\n{log}")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready after {timeout_s} s; logs in {self.folder / 'log'}")

    def start_database(self) -> None:
        data = self.folder / "db"
        subprocess.run(
            ["mariadb-install-db", f"--datadir={data}", "--user=root", "--auth-root-authentication-method=normal"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.start(
            "mariadb",
            ["mariadbd", f"--datadir={data}", "--user=root", "--bind-address=127.0.0.1", f"--port={DB_PORT}",
             f"--socket={self.folder / 'run' / 'mariadb.sock'}", f"--pid-file={self.folder / 'run' / 'mariadb.pid'}",
             "--skip-name-resolve"],
        )  # fmt: skip
        client = ["mariadb", "-h", "127.0.0.1", "-P", str(DB_PORT), "-u", "root", "-e", "select 1"]
        self.wait_for("MariaDB", lambda: subprocess.run(client, capture_output=True).returncode == 0)

    def start_munge(self) -> None:
        """munged as the munge user on its standard socket (where every SLURM client looks), with a key of its
        own; an munged already serving that socket is used as it is."""
        if MUNGE_SOCKET.exists() and subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return
        # munged runs as the munge user, which cannot enter private folders (pytest's are 0700): its own one in /tmp.
        munge = Path(tempfile.mkdtemp(prefix="sg3pipe-munge-"))
        self.cleanup.append(munge)
        key = munge / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}", "--force"], check=True, capture_output=True)
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        for path in (munge, key, MUNGE_SOCKET.parent):
            shutil.chown(path, "munge", "munge")
        key.chmod(0o400)
        self.start(
            "munged",
            ["runuser", "-u", "munge", "--", "munged", "--foreground", f"--key-file={key}", "--force",
             f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
             f"--seed-file={munge / 'munged.seed'}"],
        )  # fmt: skip
        self.wait_for("munged", lambda: subprocess.run(["munge", "-n"], capture_output=True).returncode == 0)

    def start_slurm(self) -> None:
        self.start("slurmdbd", ["slurmdbd", "-D"])
        self.wait_for("slurmdbd", lambda: self.run("sacctmgr", "-n", "list", "cluster", check=False).returncode == 0)
        self.run("sacctmgr", "-i", "add", "cluster", CLUSTER, check=False)
        self.run("sacctmgr", "-i", "add", "account", ACCOUNT, f"cluster={CLUSTER}", check=False)
        self.run("sacctmgr", "-i", "add", "user", self.user, f"account={ACCOUNT}", f"cluster={CLUSTER}", check=False)
        self.start("slurmctld", ["slurmctld", "-D", "-i"])
        self.wait_for("slurmctld", lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") >= 1)
        self.start("slurmd", ["slurmd", "-D", "-N", self.host])
        self.wait_for("node idle", lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False).stdout)

    def stop(self) -> None:
        """Stop the started processes, newest first (SIGTERM, then SIGKILL after 15 s)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes.clear()
        for path in self.cleanup:
            if path.is_symlink():
                path.unlink()
            else:
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def local_slurm(folder: str | os.PathLike) -> Iterator[LocalSlurm]:
    """A running one-node cluster whose files live in ``folder``; stopped on exit."""
    install_when_missing()
    cluster = LocalSlurm(Path(folder).resolve())
    cluster.write_config()
    try:
        cluster.start_database()
        cluster.start_munge()
        cluster.start_slurm()
        yield cluster
    finally:
        cluster.stop()


if __name__ == "__main__":
    with local_slurm(sys.argv[1] if len(sys.argv) > 1 else "slurm-cluster") as running:
        print(f"export SLURM_CONF={running.conf}\n# partition {PARTITION}, account {ACCOUNT}; Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
