"""Where collections come from besides `docchat ingest`: git repositories and websites
synced on a schedule (sources). Each source's own settings (URL, branch, limits) are
stored with it (`docchat sources add`); these are the ones an operator owns.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from app.settings.validation import SECTION_CONFIG


class SourceSettings(BaseModel):
    """Syncing sources: credentials, the scheduler, and what a crawl may reach."""

    model_config = SECTION_CONFIG

    credentials: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Tokens that sources name (`--credential NAME`), by name: e.g. "
        'DOCCHAT_SOURCES__CREDENTIALS=\'{"github": "ghp_..."}\' or the secrets file '
        "sources__credentials. A git source sends its token as an HTTP header passed "
        "through the environment of git (never in the URL, never written to disk or the "
        "database); revoke one by removing it here.",
    )
    ssh_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="SSH private keys that git sources name (`--set ssh_key=NAME`), by "
        "name, as ssh-keygen writes them: e.g. the secrets file sources__ssh_keys "
        'holding {"deploy": "-----BEGIN OPENSSH PRIVATE KEY-----\\n..."} (jq -n '
        "--rawfile k id_ed25519 '{deploy: $k}' writes it) or DOCCHAT_SOURCES__SSH_KEYS. "
        "Each fetch writes the key to a temporary file (mode 0600) that git's ssh uses "
        "and that is removed when the fetch ends; never logged or stored in the database.",
    )
    scheduler: bool = Field(
        True,
        description="The server runs due syncs in the background (one at a time per "
        "collection; with several replicas exactly one runs each sync). Off when a "
        "Kubernetes CronJob runs `docchat sources sync --due` instead.",
    )
    poll_interval_s: float = Field(
        30.0, gt=0, description="How often the server's scheduler looks for due syncs."
    )
    lease_s: float = Field(
        300.0,
        ge=10,
        description="How long a sync's lease on its collection lasts unless renewed (it "
        "is renewed every third of this while the sync runs): after a kill, another "
        "replica may take the sync over once it runs out.",
    )
    allow_private_addresses: bool = Field(
        False,
        description="Let website sources fetch from (or be redirected to) loopback, "
        "private, link-local and reserved addresses. Off: a site cannot make the server "
        "reach inside its own network (server-side request forgery). On for an intranet "
        "docs site, or tests on loopback.",
    )
    user_agent: str = Field(
        "docchat-sources/1", description="The User-Agent of crawls (and robots.txt's name)."
    )
    request_timeout_s: float = Field(
        30.0, gt=0, description="Seconds one HTTP request of a crawl may take."
    )
    git_timeout_s: float = Field(
        600.0, gt=0, description="Seconds one git clone or fetch may take."
    )
