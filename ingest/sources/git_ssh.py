"""An SSH private key for a git source, for the length of one fetch.

The key comes from the secret settings (sources.ssh_keys, by name); git reaches it
through GIT_SSH_COMMAND, which names a copy written for the one command into a fresh
private folder (0700) as a file of mode 0600 (OpenSSH refuses a key others may read),
and removed when the command ends, whatever its outcome. The key is never in the
database (a source stores the key's name), a log line or an error (lines of it are
scrubbed from git's messages).

The server's host key is checked: against the `known_hosts` lines of the source when it
has them, else trusted on the first sync and pinned in the source's folder, so a host
key that changes later fails the sync instead of handing the key to someone else.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.sources.base import SourceError

# What OpenSSH says when a host key is not the expected one (a changed key's banner
# comes first and can push the last line past the kept part of the message).
HOST_KEY_FAILED = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


def ssh_command(key_file: Path, known_hosts: Path, *, pinned: bool) -> str:
    """GIT_SSH_COMMAND: only this key, no agent, no user config, never a prompt."""
    options = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(key_file),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=30",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        # yes: only the host keys given; accept-new: the first one seen, then pinned.
        f"StrictHostKeyChecking={'yes' if pinned else 'accept-new'}",
    ]
    return " ".join(shlex.quote(o) for o in options)


def key_text(value: str, name: str) -> str:
    """The key as OpenSSH reads it (LF line ends, a final newline); SourceError if the
    value is not a private key. The message never quotes the value."""
    text = value.replace("\r\n", "\n").strip() + "\n"
    first = text.splitlines()[0]
    if not (first.startswith("-----BEGIN ") and first.endswith("PRIVATE KEY-----")):
        raise SourceError(
            f"sources.ssh_keys[{name!r}] is not a private key (it must begin with "
            "'-----BEGIN ... PRIVATE KEY-----', as ssh-keygen writes it)"
        )
    return text


def secret_parts(text: str) -> list[str]:
    """The parts of a key to scrub from messages (its base64 lines)."""
    return [line for line in text.splitlines() if len(line) >= 16 and "-----" not in line]


def explain(message: str, name: str, known_hosts: Path | None) -> str:
    """A failed fetch's message led by what ssh's words mean for the source: its key
    refused, or a host key that is not the expected one (known_hosts: the pinned file,
    None when the source gives its own lines)."""
    if "Permission denied (publickey" in message:
        return (
            f"the server refused ssh key {name!r} (is its public key still authorized "
            f"for that user there?); {message}"
        )
    if any(words in message for words in HOST_KEY_FAILED):
        # ssh's banner would fill the message (and is cut at 500 characters): only
        # the fingerprint it names is kept.
        sent = FINGERPRINT.search(message)
        where = (
            "the source's known_hosts lines"
            if known_hosts is None
            else f"the one pinned at the first sync ({known_hosts}; if the server was "
            "re-keyed, check its new key, then give it as known_hosts or remove that file)"
        )
        seen = f" ({sent.group(0)})" if sent else ""
        return (
            f"the server's host key{seen} is not {where}; "
            "git fetch failed: Host key verification failed"
        )
    return message


@contextmanager
def ssh_environment(key: str, workdir: Path, known_hosts: str | None) -> Iterator[dict[str, str]]:
    """Git's environment for one command with the key (already checked by key_text);
    the key's copy is gone once the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="docchat-ssh-"))  # 0700, this user's only
    try:
        key_file = folder / "key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key)
        if known_hosts is not None:
            hosts = folder / "known_hosts"
            hosts.write_text(known_hosts.strip() + "\n")
        else:
            hosts = workdir / "known_hosts"  # trust on first use, kept with the clone
        yield {"GIT_SSH_COMMAND": ssh_command(key_file, hosts, pinned=known_hosts is not None)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
