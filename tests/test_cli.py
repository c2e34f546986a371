"""The `docchat` command as a user runs it: real processes, real models."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from app.chat.passage import PASSAGE_INTROS
from app.cli.ask import UNFINISHED, WITHDRAWN
from app.components import Components
from app.evaluation.cases import contains_expected, read_cases
from app.settings import Settings
from tests.conftest import CORPUS, FIXTURES, run_docchat


def cli_env(data_dir: Path, **env: str) -> dict[str, str]:
    """The environment of a `docchat` process on `data_dir`: greedy, short answers."""
    return {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(data_dir),
        "DOCCHAT_SECRETS_DIR": str(data_dir / "no-secrets"),
        "DOCCHAT_LLM__TEMPERATURE": "0",
        "DOCCHAT_LLM__MAX_TOKENS": "64",
        "COLUMNS": "200",
        **env,
    }


def docchat(
    *args: str, data_dir: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    return run_docchat(*args, env=cli_env(data_dir, **env), timeout=timeout)


def run_in_terminal(command: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """A command's output written to a pseudo-terminal (so it sees a terminal), as text."""
    reader, writer = pty.openpty()
    process = subprocess.Popen(command, stdout=writer, stderr=subprocess.DEVNULL, env=env)
    os.close(writer)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([reader], [], [], 1)[0]:
                continue
            try:
                data = os.read(reader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            output += data
    finally:
        os.close(reader)
        process.kill()
        process.wait()
    return output.decode(errors="replace").replace("\r\n", "\n")


def test_ingest_reports_partial_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    result = docchat("ingest", str(corpus), "--collection", "acme-docs", data_dir=tmp_path / "data")
    assert result.returncode == 3, result.stderr
    assert "partial run: 4 file(s) failed" in result.stderr
    assert "corpus/bad/latin1.txt: not valid UTF-8" in result.stdout
    assert "corpus/bad/empty.md: empty file" in result.stdout
    # Second run: nothing to do but the bad files, which are reported again.
    again = docchat("ingest", str(corpus), "--collection", "acme-docs", data_dir=tmp_path / "data")
    assert again.returncode == 3
    counts = summary_counts(again.stdout)
    assert [counts[n] for n in ("new", "changed", "unchanged", "deleted", "failed")] == [
        0,
        0,
        5,
        0,
        4,
    ]
    assert counts["skipped"] == 1


def summary_counts(stdout: str) -> dict[str, int]:
    """The ingest summary's counts: one "name  number" line each."""
    found = re.findall(r"^\s*([a-z][a-z ]*?)\s{2,}(\d+)\s*$", stdout, flags=re.MULTILINE)
    return {name: int(value) for name, value in found}


def test_the_summary_reads_whole_in_80_columns(tmp_path: Path) -> None:
    """The summary used to be one wide table: its headings came out as "chang…"."""
    env_columns = {"COLUMNS": "80"}
    result = docchat("ingest", str(CORPUS / "guide.md"), data_dir=tmp_path / "data", **env_columns)
    assert result.returncode == 0, result.stderr
    for name in ("new", "changed", "unchanged", "deleted", "failed", "skipped", "quarantined"):
        assert re.search(rf"^\s*{name}\s+\d+\s*$", result.stdout, flags=re.MULTILINE), name
    assert "…" not in result.stdout
    assert summary_counts(result.stdout)["new"] == 1


def test_help_is_wrapped_by_the_terminal_not_by_the_docstring(tmp_path: Path) -> None:
    """Help used to break where the source's lines did ("...into a shadow index while" /
    "the current one keeps serving...") whatever the terminal's width."""
    listing = docchat("--help", data_dir=tmp_path / "data")
    assert listing.returncode == 0, listing.stderr
    # Each command is listed by its one-line summary: no row continues on the next.
    rows = [line for line in listing.stdout.splitlines() if line.startswith("│ ")]
    assert rows
    assert all(not row.startswith("│" + " " * 10) for row in rows), rows
    assert "reindex        Re-embed a collection into a shadow index, then swap" in listing.stdout
    # A command's paragraphs flow to the width (200 columns here): one line each.
    restore = docchat("backup", "restore", "--help", data_dir=tmp_path / "data")
    assert (
        "(empty ones): the signature, every path and every hash are checked first" in restore.stdout
    )
    narrow = docchat("backup", "restore", "--help", data_dir=tmp_path / "data", COLUMNS="50")
    assert max(len(line.rstrip()) for line in narrow.stdout.splitlines()) <= 50
    # Indented examples keep a line each.
    curate = docchat("curate", "add", "--help", data_dir=tmp_path / "data")
    lines = [line.strip() for line in curate.stdout.splitlines()]
    assert "docchat curate add --file examples.jsonl" in lines


def test_messages_with_brackets_print_whole(tmp_path: Path) -> None:
    """rich read "[a-zA-Z0-9._-]" as markup and cut the message there."""
    result = docchat("ingest", str(CORPUS), "--collection", "pg", data_dir=tmp_path / "data")
    assert result.returncode == 1
    assert "use 3-63 of [a-zA-Z0-9._-]" in " ".join(result.stderr.split())


def test_ingest_of_clean_folder_exits_zero(tmp_path: Path) -> None:
    result = docchat("ingest", str(CORPUS / "guide.md"), data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    # Which model (and variant: the default backend's fp32) the chunks were embedded with.
    assert re.search(r"embedding model: \S+ \(sha256 \w+, 384 dims, fp32\)", result.stdout)


def test_ingest_errors_are_clear(tmp_path: Path) -> None:
    missing = docchat("ingest", str(tmp_path / "nowhere"), data_dir=tmp_path / "data")
    assert missing.returncode == 1
    assert "no such file or folder" in missing.stderr
    bad_name = docchat("ingest", str(CORPUS), "--collection", "x", data_dir=tmp_path / "data")
    assert bad_name.returncode == 1
    assert "invalid collection name" in bad_name.stderr


def test_ingest_refused_while_the_server_holds_the_store(components: Components) -> None:
    # `components` holds the embedded store open for reading, as a running server does.
    settings: Settings = components.settings
    result = docchat("ingest", str(CORPUS / "guide.md"), data_dir=settings.data_dir)
    assert result.returncode == 1
    assert "busy" in result.stderr
    assert "Traceback" not in result.stderr


def test_ask_answers_with_sources(components: Components) -> None:
    result = docchat(
        "ask", "Where are the server logs written?", data_dir=components.settings.data_dir
    )
    assert result.returncode == 0, result.stderr
    assert "/var/log/widget/server.log" in result.stdout
    assert "Sources" in result.stdout
    assert "corpus/manual.pdf — Page 2" in result.stdout


def test_ask_says_when_an_answer_was_cut(components: Components) -> None:
    """An answer cut at its length limit says so under its last line, as the chat page
    does; one the model finished does not."""
    data = components.settings.data_dir
    question = "Where are the server logs written?"
    cut = docchat("ask", question, data_dir=data, DOCCHAT_LLM__MAX_TOKENS="4")
    assert cut.returncode == 0, cut.stderr
    answer, note, _ = cut.stdout.partition(UNFINISHED["length"])
    assert note
    assert answer.strip()
    whole = docchat("ask", question, data_dir=data, DOCCHAT_LLM__MAX_TOKENS="200")
    assert whole.returncode == 0, whole.stderr
    assert "/var/log/widget/server.log" in whole.stdout
    assert not any(n in whole.stdout for n in UNFINISHED.values())


def test_ask_never_leaves_a_withdrawn_answer_unmarked(components: Components) -> None:
    # A confidence floor of 1 withdraws every answer the model writes (no answer is sure
    # of every token; the tiny test model's may fail its grounding too): its closest
    # passage is given instead, with a lead-in that says why.
    unsure = {
        "DOCCHAT_RAG__MIN_CONFIDENCE": "1",
        "DOCCHAT_RAG__SELF_CHECK": "",
        "DOCCHAT_RAG__UNGROUNDED_ACTION": "passages",  # the product's default
    }
    question = "Where are the server logs written?"
    data = components.settings.data_dir
    piped = docchat("ask", question, data_dir=data, **unsure)
    assert piped.returncode == 0, piped.stderr
    # Piped, only what is finally given: the withdrawn text is not written at all.
    assert piped.stdout.startswith(PASSAGE_INTROS)
    assert WITHDRAWN not in piped.stdout
    # On a terminal the answer streams as written, so the withdrawn text is marked above
    # what replaces it.
    command = [sys.executable, "-m", "app.cli", "ask", question]
    tty = run_in_terminal(command, cli_env(data, **unsure))
    streamed, _, given = tty.partition(WITHDRAWN)
    assert streamed.strip()  # the answer as it streamed
    assert given.strip().startswith(PASSAGE_INTROS)


def test_feedback_list_shows_what_to_fix(tmp_path: Path) -> None:
    from app.components import open_database
    from app.store import conversations, feedback
    from tests.conftest import make_settings

    data = tmp_path / "data"
    db = open_database(make_settings(data))
    with db.session() as session:
        conversation = conversations.create(session, "q").id
        for n, (question, rating, comment) in enumerate(
            [("How to install?", "up", None), ("Which [bold]port[/]?", "down", "[/] wrong port")]
        ):
            conversations.add_message(session, conversation, "user", content=question)
            answer = conversations.add_message(
                session,
                conversation,
                "assistant",
                content=f"answer {n}",
                citations=[{"source": f"doc{n}.md", "title": "t", "section": "", "score": 0.5}],
            )
            feedback.give(session, answer.id, "support-bot", rating, comment)
    db.close()

    listed = docchat("feedback", "list", "--rating", "down", "--json", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)
    assert (item["question"], item["comment"], item["given_by"]) == (
        "Which [bold]port[/]?",
        "[/] wrong port",
        "support-bot",
    )
    assert item["citations"][0]["source"] == "doc1.md"
    table = docchat("feedback", "list", data_dir=data)
    assert table.returncode == 0, table.stderr
    # User text is shown as written, never read as markup.
    assert "Which [bold]port[/]?" in table.stdout
    assert "How to install?" in table.stdout
    assert table.stdout.index("Which") < table.stdout.index("How to install")
    bad = docchat("feedback", "list", "--rating", "sideways", data_dir=data)
    assert bad.returncode == 2
    assert "sideways" in bad.stderr


def test_looking_at_the_settings_writes_nothing(tmp_path: Path) -> None:
    """`config show` used to generate the development pepper file as a side effect."""
    data = tmp_path / "data"
    result = docchat("config", "show", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert not (data / "secrets" / "key_pepper").exists()
    created = docchat("keys", "create", "--name", "ci", "--scope", "chat", data_dir=data)
    assert created.returncode == 0, created.stderr
    assert (data / "secrets" / "key_pepper").is_file()  # made when a key needs it


def test_eval_answers_and_retrieval_report_and_gate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingested = docchat("ingest", str(CORPUS), data_dir=data)
    assert ingested.returncode == 3, ingested.stderr  # the corpus's bad files
    qa = str(FIXTURES / "corpus_qa.jsonl")
    answers = docchat("eval", "answers", qa, "--json", data_dir=data)
    assert answers.returncode == 0, answers.stderr
    report = json.loads(answers.stdout)
    assert (report["questions"], report["in_scope"], report["out_of_scope"]) == (8, 6, 2)
    assert report["model"]
    assert len(report["model_sha256"]) == 64
    # The share is the judged answers' own verdicts, each judged again here from the
    # answer text (`0 <= expected <= 1`, asserted before, could not fail); the small model
    # gets some right, and with the canary pinned the same ones in every process.
    cases = read_cases(FIXTURES / "corpus_qa.jsonl")
    verdicts = [
        False if result["refused"] else contains_expected(case, result["answer"])
        for case, result in zip(cases, report["results"], strict=True)
        if not case.out_of_scope
    ]
    judged = [v for v in verdicts if v is not None]
    inside = [r for c, r in zip(cases, report["results"], strict=True) if not c.out_of_scope]
    assert [r["contains_expected"] for r in inside] == verdicts
    assert report["expected"] == round(sum(judged) / len(judged), 4)
    assert report["expected"] > 0
    assert report["cited"] == 1.0  # retrieval finds every source of this small corpus
    assert report["refused_out_of_scope"] == 1.0  # nothing retrieved: refused unasked
    assert report["total_p95_s"] >= report["total_p50_s"] > 0
    first = report["results"][0]
    assert first["question"].startswith("Which port")
    assert first["contains_expected"] == ("7421" in first["answer"])
    # A threshold that is missed: exit 4, naming it.
    slow = docchat("eval", "answers", qa, "--limit", "2", "--max-p95-s", "0.001", data_dir=data)
    assert slow.returncode == 4, slow.stderr
    assert "threshold missed: total_p95_s" in slow.stderr
    assert "expected" in slow.stdout  # the human report came first
    retrieval = docchat("eval", "retrieval", qa, "--json", "--min-recall", "1", data_dir=data)
    assert retrieval.returncode == 0, retrieval.stderr
    assert json.loads(retrieval.stdout)["questions"] == 6  # out-of-scope ones left out


def test_ingest_calibrates_the_scope_and_keeps_a_calibration_from_a_set(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingested = docchat("ingest", str(CORPUS / "guide.md"), data_dir=data)
    assert ingested.returncode == 0, ingested.stderr
    assert re.search(r"^scope: scope threshold 0\.\d{3} \(off-topic", ingested.stdout, re.M)
    qa = str(FIXTURES / "corpus_qa.jsonl")
    calibrated = docchat("calibrate", "--questions", qa, data_dir=data)
    assert calibrated.returncode == 0, calibrated.stderr
    assert "(questions, from " in calibrated.stdout
    assert "6 in scope, 2 out of scope" in calibrated.stdout
    again = docchat("ingest", str(CORPUS / "guide.md"), data_dir=data)
    assert again.returncode == 0, again.stderr
    assert "scope: kept scope threshold" in again.stdout


def test_eval_answers_repeat_whatever_the_process_canary(tmp_path: Path) -> None:
    """Two evaluations in processes with different markers (of different lengths, so the
    prompts would differ by tokens) answer from the same prompts: the evaluation canary."""
    data = tmp_path / "data"
    assert docchat("ingest", str(CORPUS), data_dir=data).returncode == 3  # its bad files
    qa = str(FIXTURES / "corpus_qa.jsonl")
    runs = []
    for canary in ("ShortCanary12345", "L" * 64):
        done = docchat(
            "eval",
            "answers",
            qa,
            "--limit",
            "3",
            "--json",
            data_dir=data,
            DOCCHAT_SECURITY__CANARY=canary,
        )
        assert done.returncode == 0, done.stderr
        runs.append([(r["prompt_tokens"], r["answer"]) for r in json.loads(done.stdout)["results"]])
    assert runs[0] == runs[1]
    assert all(tokens > 0 for tokens, _ in runs[0])
