"""Promoting a model from the console, in headless Chromium with an admin API key: the
gate refuses a candidate whose recorded figures fall behind the model in service (the
page shows the gate's reason), passes it once its figures hold, the server swaps to it,
the page rolls it back, and the audit view shows all three.

The reports are recorded by the test (as `docchat models evaluate` records them) so the
gate's judgement is what the page drives; tests/llm/test_models.py measures for real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app.components import Components, active_model, load_model
from app.llm.hosting import SwappableEngine
from app.main import create_app
from app.releases.registry import Registry
from app.store.db import Database
from tests.conftest import serve_in_thread, with_auth
from tests.llm.test_models import Variants, variants
from tests.test_web_browser import ARTIFACTS, PAGE_TIMEOUT_S, _browser_problems, driver

pytestmark = pytest.mark.browser
__all__ = ["driver", "variants"]


def report(sha256: str, expected: float) -> dict[str, Any]:
    """A recorded evaluation on one gate set, as the gate compares them."""
    answers = {"expected": expected, "grounded": 0.5, "errors": 0, "first_token_p95_s": 2.0}
    return {
        "model": "x",
        "sha256": sha256,
        "sets": [{"file": "eval/docs_qa.jsonl", "collection": "docs", "answers": answers}],
    }


@pytest.fixture
def console(
    components: Components, variants: Variants, tmp_path: Path
) -> Iterator[tuple[str, str, Registry, SwappableEngine]]:
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    db.migrate()
    registry = Registry(db)
    base = components.settings
    settings = with_auth(
        base.model_copy(
            update={
                "database": base.database.model_copy(
                    update={"url": SecretStr(f"sqlite:///{tmp_path / 'registry.db'}")}
                )
            }
        )
    )
    registry.seed(variants.original, name="smollm2")
    registry.add_model(variants.q8, name="smollm2-q8")
    registry.record_report(registry.model("smollm2"), report(registry.model("smollm2").sha256, 0.6))
    # An adapter's lineage and gate report; the registry only hashes its file (serving one
    # is tested in tests/finetune), so it is never activated here.
    (tmp_path / "tone.gguf").write_bytes(b"adapter bytes for the registry")
    tone = registry.add_adapter(
        tmp_path / "tone.gguf",
        name="tone",
        base=registry.model("smollm2"),
        dataset_name="support-answers",
        dataset_sha256="ab" * 32,
        hyperparameters={"rank": 8},
        training={"steps": 120},
    )
    held = {
        "adapter": {"f1": 0.41, "close": 0.5, "examples": 20},
        "base": {"f1": 0.52, "close": 0.5},
    }
    registry.record_report(
        tone,
        {
            **report(registry.model("smollm2").sha256, 0.6),
            "adapter_sha256": tone.sha256,
            "held_out": held,
        },
    )
    engine = SwappableEngine(load_model(settings, active_model(settings, db)))
    served = components.using(settings=settings, db=db, engine=engine)
    key = served.guards.keys.create("console-admin", "admin")
    served.warm()
    try:
        for base_url in serve_in_thread(create_app(settings, served)):
            yield base_url, key, registry, engine
    finally:
        engine.close()
        db.close()


def _ready(drv) -> None:
    WebDriverWait(drv, PAGE_TIMEOUT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready",
        message="the console section did not load",
    )


def _rows(drv, table: str) -> list[list[str]]:
    return [
        [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        for r in drv.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    ]


def _result(drv) -> str:
    return drv.find_element(By.ID, "model-result").text


@pytest.mark.slow  # loads the candidate model on activation
def test_the_gate_refuses_then_passes_and_the_page_rolls_back(
    driver, console: tuple[str, str, Registry, SwappableEngine]
) -> None:
    base, key, registry, engine = console
    driver.get(base + "/admin#models")
    driver.execute_script("window.sessionStorage.clear();")
    driver.get(base + "/admin#models")
    # An admin key, pasted as a person does (the page is public; its data is not).
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, "key-form").is_displayed(), message="no key form"
    )
    driver.find_element(By.ID, "api-key").send_keys(key)
    driver.find_element(By.ID, "key-submit").click()
    _ready(driver)
    assert "docs_qa.jsonl: expected 0.60" in driver.find_element(By.ID, "models-table").text

    # Worse than the model in service: refused, with the gate's reason on the page.
    q8 = registry.model("smollm2-q8")
    registry.record_report(q8, report(q8.sha256, 0.3))
    driver.find_element(By.CSS_SELECTOR, '[aria-label^="Activate smollm2-q8 on"]').click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: _result(d).startswith("Refused"), message="not refused"
    )
    assert "expected fell from 0.6 to 0.3" in _result(driver)
    assert engine.model_id == "smollm2"
    # Its gate report: each figure against the model in service, the worse one marked.
    driver.find_element(By.CSS_SELECTOR, '[aria-label="Gate report of smollm2-q8"]').click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: "smollm2-q8 against smollm2" in d.find_element(By.ID, "gate-title").text,
        message="no gate report",
    )
    rows = _rows(driver, "gate-table")
    assert ["docs_qa.jsonl", "expected", "0.30", "0.60", "worse"] in rows
    assert ["docs_qa.jsonl", "grounded", "0.50", "0.50", "holds"] in rows
    assert (
        "refuses it: docs_qa.jsonl: expected fell"
        in driver.find_element(By.ID, "gate-verdict").text
    )
    # The adapter: its lineage, and the gate's report against the base alone.
    (adapter,) = _rows(driver, "adapters-table")
    assert adapter[0] == "tone"
    assert adapter[1].startswith("trained on smollm2 (")
    assert "with dataset support-answers (abababababab), 120 steps" in adapter[1]
    assert adapter[3] == "candidate"
    driver.find_element(By.CSS_SELECTOR, '[aria-label="Gate report of tone"]').click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: "smollm2+tone against smollm2" in d.find_element(By.ID, "gate-title").text,
        message="no adapter gate report",
    )
    assert ["held-out split", "f1", "0.41", "0.52", "worse"] in _rows(driver, "gate-table")
    assert (
        "held-out split (20 examples): f1 0.41" in driver.find_element(By.ID, "gate-verdict").text
    )
    shot = os.path.join(ARTIFACTS, "console-models.png")
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.execute_script("document.getElementById('adapters-table').scrollIntoView()")
    driver.save_screenshot(shot)
    print(f"screenshot: {shot}")

    # Measured again and as good: it passes, and this server swaps to it.
    registry.record_report(q8, report(q8.sha256, 0.6))
    driver.find_element(By.CSS_SELECTOR, '[aria-label^="Activate smollm2-q8 on"]').click()
    WebDriverWait(driver, 120).until(
        lambda d: "smollm2-q8 is in service" in _result(d), message="not activated"
    )
    assert engine.model_id == "smollm2-q8"

    driver.find_element(By.ID, "model-rollback").click()
    WebDriverWait(driver, 120).until(
        lambda d: "smollm2 is in service" in _result(d), message="not rolled back"
    )
    assert engine.model_id == "smollm2"

    driver.find_element(By.CSS_SELECTOR, '.admin-tab[data-tab="audit"]').click()
    field = driver.find_element(By.CSS_SELECTOR, "#audit-filter input[name=action]")
    field.send_keys("model")
    driver.find_element(By.CSS_SELECTOR, "#audit-filter button[type=submit]").click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: "model.rollback" in d.find_element(By.ID, "audit-table").text,
        message="no audit events",
    )
    rows = [
        [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        for r in driver.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")
    ]
    outcomes = [(r[2], r[4]) for r in rows if r[1].startswith("key:")]
    assert ("model.activate", "refused") in outcomes
    assert ("model.activate", "ok") in outcomes
    assert ("model.rollback", "ok") in outcomes
    assert _browser_problems(driver) == []
