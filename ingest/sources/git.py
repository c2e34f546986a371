"""A git repository: cloned once into the source's folder, then fetched; a sync reads
only the files the commit range changed, and the pipeline removes the deleted ones.

The token (sources.credentials) reaches git as an `http.extraHeader` set through git's
environment (GIT_CONFIG_COUNT...), for the one command: never in the remote URL, so
never in .git/config, the database or a log line; git's own errors are scrubbed of it
before they are shown. An SSH key (sources.ssh_keys) goes through GIT_SSH_COMMAND and
a temporary key file (ingest/sources/git_ssh.py).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ingest.discovery import SourceFile, excluded
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import Listing
from ingest.sources.base import Fetched, KindConfig, SourceError, SourceKind
from ingest.sources.git_ssh import explain, key_text, secret_parts, ssh_environment

# git's scp-like address, user@host:path (no scheme).
SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//).+")


class GitConfig(KindConfig):
    """A git source's settings."""

    url: str = Field(
        description="The repository: https://, http://, ssh://, git://, file://, or user@host:path."
    )
    branch: str = Field("main", pattern=r"^[A-Za-z0-9._/-]{1,200}$", description="Branch.")
    subpath: str = Field("", description="Only files under this folder of the repository.")
    include: list[str] = Field(
        default_factory=list, description="Globs (relative to subpath) to take; none: all."
    )
    exclude: list[str] = Field(default_factory=list, description="Globs to leave out.")
    credential: str | None = Field(None, description="Name of a token in sources.credentials.")
    ssh_key: str | None = Field(
        None, description="Name of a private key in sources.ssh_keys (ssh URLs)."
    )
    known_hosts: str | None = Field(
        None,
        description="The server's host key lines, as in known_hosts (public); none: the "
        "key seen at the first sync is trusted and pinned.",
    )
    username: str = Field(
        "x-access-token", description="User name sent with the token (HTTP basic)."
    )
    web_url: str | None = Field(
        None,
        description="Citation link template with {commit} and {path}, e.g. "
        "https://github.com/org/repo/blob/{commit}/{path}.",
    )
    max_files: int = Field(20_000, ge=1, description="More files than this: the sync stops.")

    @field_validator("url")
    @classmethod
    def _no_secret_in_url(cls, url: str) -> str:
        if SCP_LIKE.fullmatch(url):
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "file", "git"):
            raise ValueError(
                "url: use https://, http://, ssh://, git://, file:// or user@host:path"
            )
        if parts.password or (parts.username and parts.scheme in ("https", "http")):
            raise ValueError(
                "url: no credentials in the URL (it is stored); name a token of "
                "sources.credentials with credential instead"
            )
        return url

    @model_validator(mode="after")
    def _credential_fits_url(self) -> GitConfig:
        ssh = bool(SCP_LIKE.fullmatch(self.url)) or urlsplit(self.url).scheme == "ssh"
        if self.ssh_key and not ssh:
            raise ValueError("ssh_key: only for ssh:// or user@host:path URLs")
        if self.credential and ssh:
            raise ValueError("credential: a token is for https:// URLs; use ssh_key over ssh")
        return self

    @field_validator("subpath")
    @classmethod
    def _relative(cls, subpath: str) -> str:
        clean = subpath.strip("/")
        if ".." in PurePosixPath(clean).parts:
            raise ValueError("subpath: a folder inside the repository")
        return clean


class GitSource(SourceKind):
    """Files of one branch of a repository, each citing the commit it was read at."""

    name = "git"
    target = "url"
    Config = GitConfig
    config: GitConfig

    def fetch(self, state: dict[str, Any]) -> Fetched:
        repo = self.context.workdir / "repo"
        self._clone_or_fetch(repo)
        commit = self._git(repo, "rev-parse", f"refs/remotes/origin/{self.config.branch}")
        self._git(repo, "checkout", "-q", "--force", "--detach", commit)
        self._git(repo, "clean", "-q", "-ffdx")
        root = repo / self.config.subpath if self.config.subpath else repo
        if not root.is_dir():
            raise SourceError(f"no folder {self.config.subpath!r} in {self.config.branch}")
        files, unsupported = self._listing(repo, commit)
        previous = state.get("commit")
        changed = self._changed(repo, previous, commit)
        note = f"commit {commit[:12]}"
        if changed is not None:
            note += f" ({len(changed)} files changed since {str(previous)[:12]})"
        return Fetched(
            root.resolve(),
            Listing(files, unsupported, changed),
            {"commit": commit},
            note,
        )

    def describe(self) -> str:
        sub = f" /{self.config.subpath}" if self.config.subpath else ""
        return f"{self.config.url} {self.config.branch}{sub}"

    def _clone_or_fetch(self, repo: Path) -> None:
        url = self.config.url
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            self._git(repo, "init", "-q")
            self._git(repo, "remote", "add", "origin", url)
        else:
            self._git(repo, "remote", "set-url", "origin", url)
        branch = self.config.branch
        key = self._ssh_key()
        context: AbstractContextManager[dict[str, str]] = (
            ssh_environment(key, self.context.workdir, self.config.known_hosts)
            if key is not None
            else nullcontext({})
        )
        with context as env:
            try:
                self._git(
                    repo,
                    "fetch",
                    "-q",
                    "--no-tags",
                    "--prune",
                    "origin",
                    f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
                    network=True,
                    env=env,
                    secrets=secret_parts(key) if key is not None else [],
                )
            except SourceError as exc:
                if key is None or self.config.ssh_key is None:
                    raise
                pinned = None if self.config.known_hosts else self.context.workdir / "known_hosts"
                raise SourceError(explain(str(exc), self.config.ssh_key, pinned)) from None

    def _ssh_key(self) -> str | None:
        """The source's private key, checked (SourceError when missing or not a key)."""
        name = self.config.ssh_key
        if name is None:
            return None
        secret = self.context.ssh_keys.get(name)
        if secret is None:
            raise SourceError(f"ssh key {name!r} is not set in sources.ssh_keys")
        return key_text(secret.get_secret_value(), name)

    def _listing(self, repo: Path, commit: str) -> tuple[list[SourceFile], list[Path]]:
        sub = self.config.subpath
        out = self._git(repo, "ls-files", "-z", "--", sub or ".")
        files: list[SourceFile] = []
        unsupported: list[Path] = []
        patterns = [*self.context.exclude, *self.config.exclude]
        for name in filter(None, out.split("\0")):
            relative = name[len(sub) + 1 :] if sub else name
            if any(part.startswith(".") for part in PurePosixPath(relative).parts):
                continue
            if self.config.include and not excluded(relative, self.config.include):
                continue
            if excluded(relative, patterns):
                continue
            path = repo / name
            # A link could point anywhere on the machine: never followed.
            if path.is_symlink() or not path.is_file():
                continue
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                unsupported.append(path)
                continue
            files.append(SourceFile(path.resolve(), self._cite(name, commit)))
            if len(files) > self.config.max_files:
                raise SourceError(
                    f"more than {self.config.max_files} files to index; narrow it with "
                    "subpath, include or exclude, or raise max_files"
                )
        return files, unsupported

    def _changed(self, repo: Path, previous: Any, commit: str) -> frozenset[Path] | None:
        """Files the range previous..commit touched; None when unknown (first sync, or
        the previous commit is gone after a force-push): then every file is hashed."""
        if not isinstance(previous, str):
            return None
        if previous == commit:
            return frozenset()
        try:
            self._git(repo, "cat-file", "-e", f"{previous}^{{commit}}")
        except SourceError:
            return None
        out = self._git(repo, "diff", "--name-only", "-z", "--no-renames", previous, commit, "--")
        return frozenset((repo / n).resolve() for n in filter(None, out.split("\0")))

    def _cite(self, name: str, commit: str) -> str:
        if self.config.web_url:
            return self.config.web_url.format(commit=commit, path=name)
        url = self.config.url
        if SCP_LIKE.fullmatch(url):
            url = "ssh://" + url.replace(":", "/", 1)
        where = urlsplit(url)
        host = where.netloc.rpartition("@")[2]  # never the user name
        label = (host + where.path).rstrip("/").removesuffix(".git")
        return f"{label}/{name}@{commit[:12]}"

    def _git(
        self,
        repo: Path,
        *args: str,
        network: bool = False,
        env: dict[str, str] | None = None,
        secrets: list[str] | None = None,
    ) -> str:
        """Run git in `repo`; its output, or SourceError with its message (scrubbed of
        the token and of `secrets`)."""
        secrets = list(secrets or [])
        env = {
            **(env or {}),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.context.workdir),
            "GIT_TERMINAL_PROMPT": "0",  # a refused credential fails, never waits
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
        }
        if network and self.config.credential:
            token = self.context.credentials.get(self.config.credential)
            if token is None:
                raise SourceError(
                    f"credential {self.config.credential!r} is not set in sources.credentials"
                )
            value = token.get_secret_value()
            basic = base64.b64encode(f"{self.config.username}:{value}".encode()).decode()
            secrets += [value, basic]
            env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=repo,
                env=env,
                capture_output=True,
                timeout=self.context.git_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SourceError(
                f"git {args[0]} took over {self.context.git_timeout_s:g} s (sources.git_timeout_s)"
            ) from None
        if done.returncode != 0:
            message = " ".join(done.stderr.decode("utf-8", "replace").split())
            for secret in secrets:
                message = message.replace(secret, "***")
            raise SourceError(f"git {args[0]} failed: {message[:500]}")
        return done.stdout.decode("utf-8", "surrogateescape").strip()
