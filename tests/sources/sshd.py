"""A real OpenSSH server on loopback for the git-over-SSH tests (Debian's
openssh-server): its own host key, config, authorized_keys and log under a test's
folder, run as the current user (`UsePAM no`, `StrictModes no`), so git's
`git-upload-pack` runs on the "server" as that user, on repositories on this disk."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.needs import need_path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP = Path("/run/sshd")


def keypair(path: Path) -> tuple[str, str]:
    """A fresh ed25519 key made by ssh-keygen: (private, public line)."""
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


@dataclass
class SshServer:
    """One sshd; `authorize` / `revoke` edit the authorized_keys file it reads at each
    sign-in, so a change counts from the next connection."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def authorized_keys(self) -> Path:
        return self.folder / "authorized_keys"

    def log(self) -> str:
        """What sshd has logged (each start writes a file of its own)."""
        return "".join(p.read_text() for p in sorted(self.folder.glob("sshd-*.log")))

    @property
    def host_key(self) -> Path:
        return self.folder / "host_ed25519"

    def url(self, repo: Path) -> str:
        """The ssh:// URL of a repository on this disk."""
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{repo}"

    def known_hosts_line(self) -> str:
        """The server's host key as a known_hosts line."""
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}"

    def fingerprint(self) -> str:
        """The host key's SHA256 fingerprint, as ssh shows it."""
        out = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(self.host_key.with_suffix(".pub"))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split()[1]

    def authorize(self, public: str) -> None:
        with self.authorized_keys.open("a") as out:
            out.write(public + "\n")

    def revoke(self, public: str) -> None:
        lines = self.authorized_keys.read_text().splitlines()
        self.authorized_keys.write_text("".join(f"{x}\n" for x in lines if x != public))

    def connections(self) -> int:
        """How many connections sshd has logged."""
        return self.log().count("Connection from 127.0.0.1")

    def start(self) -> None:
        config = self.folder / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1:{self.port}\n"
            f"HostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            f"PidFile {self.folder / 'sshd.pid'}\n"
            "UsePAM no\n"
            "StrictModes no\n"  # the test folders' modes are not sshd's business here
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"  # keys only, where tests run as root
            "LogLevel VERBOSE\n"
        )
        self.starts += 1
        log_file = self.folder / f"sshd-{self.starts}.log"
        with log_file.open("wb") as log:
            # -D: stay in the foreground (ours to stop); -e: log to stderr, the file.
            self.process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 15
        while f"listening on 127.0.0.1 port {self.port}" not in log_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start: {log_file.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def new_host_key(self) -> None:
        """Restart on the same port with another host key (a server replaced, or a
        man in the middle)."""
        self.stop()
        keypair(self.host_key)
        self.start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    """A running sshd with an empty authorized_keys; stopped at the end."""
    need_path(SSHD, "the end-to-end SSH tests start an sshd (apt-get install openssh-server)")
    if os.geteuid() == 0 and not PRIVSEP.is_dir():
        # As root sshd insists on its privilege-separation folder, which Debian's ssh
        # service creates at boot (systemd RuntimeDirectory); no service runs here.
        PRIVSEP.mkdir(mode=0o755)
    folder.mkdir(parents=True, exist_ok=True)
    server = SshServer(folder, _free_port())
    keypair(server.host_key)
    server.authorized_keys.touch()
    server.start()
    try:
        yield server
    finally:
        server.stop()
