"""Prompts (cf.Prompt) answered in a browser: Studio's Inputs page and step panel, against a real
`coflux server` and `coflux worker` (tests/apps/promptapp.py). Screenshots go to `artifacts`."""

from __future__ import annotations

import json
import pathlib
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import Server, Worker, wait_until  # noqa: E402
from runview_helpers import serving  # noqa: E402

pytestmark = pytest.mark.ui

REPO = TESTS.parent
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def stack(ui_requirements, tmp_path_factory) -> Iterator[Server]:
    if not (REPO / "server" / "static" / "studio.js").is_file():
        pytest.fail("server/static/studio.js is not built (npm --prefix jupyter_ext/frontend run build)")
    with serving(tmp_path_factory.mktemp("inputs-studio"), ["promptapp"], concurrency=2) as server:
        yield server


def api(server: Server, path: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(server.url + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {server.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=70) as response:
        return json.loads(response.read())


def pending_input(server: Server, run_id: str) -> dict:
    return wait_until(lambda: (api(server, f"api/inputs?run={run_id}")["inputs"] or [None])[0], 60,
                      message=f"a prompt of {run_id}")


def test_a_pydantic_prompt_answered_in_studio(stack: Server, page, artifacts: pathlib.Path) -> None:
    server = stack
    run_id = api(server, "api/runs", {"module": "promptapp", "target": "annotate",
                                      "kwargs": {"text": "Arrived late, works well."}})["run"]
    asked = pending_input(server, run_id)
    page.goto(f"{server.url}?token={server.token}")
    page.wait_for_selector(".cf-studio")
    # The Inputs page lists it (title, run, step, age), and the navigation counts it.
    page.goto(f"{server.url}#/inputs")
    row = page.locator(f".cf-inputs-list tr[data-input='{asked['id']}']")
    row.wait_for(timeout=WAIT_MS)
    assert "Label" in row.inner_text() and run_id in row.inner_text() and f"{run_id}:1" in row.inner_text()
    assert page.locator(".cf-studio-nav .cf-count-badge").inner_text().strip() != ""
    page.screenshot(path=str(artifacts / "inputs-studio-list.png"))
    # Answer: the step's panel holds the form built from the model's JSON Schema.
    row.locator(".cf-inputs-open").click()
    card = page.locator(f".cf-step-panel .cf-prompt[data-input='{asked['id']}']")
    card.wait_for(timeout=WAIT_MS)
    assert "Label this feedback" in card.inner_text() and "Arrived late, works well." in card.inner_text()
    card.locator("#cf-sf-sentiment").select_option(label="positive")
    card.locator("#cf-sf-topic").select_option(label="shipping")
    card.locator("#cf-sf-confidence").fill("9")  # above the model's maximum: refused, nothing sent
    card.locator(".cf-prompt-respond").click()
    card.locator(".cf-sf-error").first.wait_for(timeout=WAIT_MS)
    assert "confidence" in card.inner_text()
    assert api(server, f"api/inputs/{asked['id']}")["state"] == "pending"
    page.screenshot(path=str(artifacts / "inputs-studio-invalid.png"))
    card.locator("#cf-sf-confidence").fill("4")
    card.locator(".cf-prompt-respond").click()
    page.locator(f".cf-step-panel .cf-prompt[data-input='{asked['id']}'][data-state='responded']").wait_for(
        timeout=WAIT_MS)
    outcome = api(server, f"api/runs/{run_id}/result?timeout=60")
    assert outcome["value"]["v"] == {"sentiment": "positive", "topic": "shipping", "confidence": 4}, outcome
    answered = page.locator(f".cf-step-panel .cf-prompt[data-input='{asked['id']}']")
    wait_until(lambda: "by " in answered.inner_text(), 30, message="who answered, in the step panel")
    page.screenshot(path=str(artifacts / "inputs-studio-answered.png"))
    assert not page.errors, page.errors


def test_an_approval_answered_in_the_run_view(stack: Server, page, artifacts: pathlib.Path) -> None:
    server = stack
    run_id = api(server, "api/runs", {"module": "promptapp", "target": "deploy", "args": ["api"]})["run"]
    asked = pending_input(server, run_id)
    page.goto(f"{server.url}?token={server.token}")
    page.wait_for_selector(".cf-studio")
    page.goto(f"{server.url}#/runs/{run_id}")
    card = page.locator(f".cf-prompts .cf-prompt[data-input='{asked['id']}']")
    card.wait_for(timeout=WAIT_MS)
    assert "Approve deployment of api?" in card.inner_text()
    # The step's node says why it does not move.
    page.locator(".cf-node-step").filter(has_text="waiting for input").first.wait_for(timeout=WAIT_MS)
    page.screenshot(path=str(artifacts / "inputs-runview-approval.png"))
    card.locator(".cf-prompt-respond").click()
    outcome = api(server, f"api/runs/{run_id}/result?timeout=60")
    assert outcome["status"] == "value", outcome
    page.locator(f".cf-prompts .cf-prompt[data-input='{asked['id']}']").wait_for(state="detached", timeout=WAIT_MS)
    assert not page.errors, page.errors


# ---------------------------------------------------------------------- the notebook

NOTEBOOK = "prompt_demo.ipynb"


def test_a_pydantic_prompt_answered_in_the_notebook_cell(lab, page, artifacts: pathlib.Path) -> None:
    from playwright.sync_api import expect
    from ui_helpers import wait_for_idle_kernel, write_notebook

    if not (REPO / "coflux" / "static" / "runview.js").is_file():
        pytest.fail("coflux/static/runview.js is not built (npm --prefix jupyter_ext/frontend run build)")
    write_notebook(lab.root / NOTEBOOK, [
        "%load_ext coflux",
        "from typing import Literal\n"
        "from pydantic import BaseModel, Field\n"
        "import coflux as cf\n\n"
        "class Label(BaseModel):\n"
        "    sentiment: Literal['positive', 'neutral', 'negative']\n"
        "    confidence: int = Field(ge=1, le=5)\n\n"
        "label = cf.Prompt('Label this feedback:\\n\\n{text}', model=Label, title='Label')\n\n"
        "@cf.workflow()\n"
        "def annotate(text: str) -> str:\n"
        "    answer = label(text=text)\n"
        "    return f'{answer.sentiment} ({answer.confidence})'\n",
        "run = annotate.run('Great product, slow shipping.')\nrun",
        "print('answered:', run.result())",
    ])
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}")
    wait_for_idle_kernel(page, NOTEBOOK, 90_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    # The prompt is a form right in the output of the cell that started the run.
    card = page.locator(".jp-OutputArea-output .cf-runview .cf-prompts .cf-prompt").first
    expect(card).to_be_visible(timeout=90_000)
    expect(card).to_contain_text("Great product, slow shipping.")
    node = page.locator(".jp-OutputArea-output .cf-runview .cf-node-step").first
    expect(node).to_contain_text("waiting for input", timeout=30_000)
    card.locator("#cf-sf-sentiment").select_option(label="negative")
    card.locator("#cf-sf-confidence").fill("2")
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "inputs-notebook-form.png"))
    card.locator(".cf-prompt-respond").click()
    output = page.locator(".jp-Notebook .jp-Cell").nth(3).locator(".jp-OutputArea-output")
    expect(output).to_contain_text("answered: negative (2)", timeout=90_000)
    expect(page.locator(".jp-OutputArea-output .cf-runview .cf-prompts .cf-prompt")).to_have_count(0, timeout=30_000)
    page.screenshot(path=str(artifacts / "inputs-notebook-answered.png"))


# ---------------------------------------------------------------------- the Lab panel


def test_the_lab_panel_lists_prompts_with_a_badge_and_answers_them(lab, page, artifacts: pathlib.Path,
                                                                   tmp_path: pathlib.Path) -> None:
    import types

    from harness import run_cli
    from playwright.sync_api import expect

    server = types.SimpleNamespace(url=lab.url + "coflux/", token=lab.token)
    worker = Worker(server, ["promptapp"], concurrency=2, log=tmp_path / "worker.log").start()  # type: ignore[arg-type]
    try:
        wait_until(lambda: "deploy" in {w["name"] for w in lab.api("coflux/api/workflows")["workflows"]}, 60,
                   interval=0.1, message="the promptapp worker to register")
        done = run_cli("submit", "--no-wait", "promptapp/deploy", '"lab"', env=worker_env(lab))
        assert done.returncode == 0, done.stderr
        run_id = done.stdout.strip()
        asked = wait_until(lambda: (lab.api(f"coflux/api/inputs?run={run_id}")["inputs"] or [None])[0], 60,
                           message="the prompt")
        page.goto(f"{lab.url}lab?reset&token={lab.token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('coflux:open-run')",
                               timeout=60_000)
        page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="coflux-studio"]')
        panel = page.locator("#coflux-studio")
        expect(tab).to_be_visible(timeout=60_000)
        if not panel.is_visible():
            tab.click()
        row = panel.locator(f".coflux-lab-inputs li[data-input='{asked['id']}']")
        expect(row).to_be_visible(timeout=60_000)
        expect(row).to_contain_text("Deployment")
        expect(tab).to_have_attribute("data-coflux-inputs", "1", timeout=30_000)  # the badge on the icon
        page.screenshot(path=str(artifacts / "inputs-lab-panel.png"))
        row.locator(".cf-inputs-open").click()
        card = panel.locator(f".cf-prompt[data-input='{asked['id']}']")
        expect(card).to_contain_text("Approve deployment of lab?", timeout=30_000)
        card.locator(".cf-prompt-respond").click()
        wait_until(lambda: lab.api(f"coflux/api/inputs/{asked['id']}")["state"] == "responded", 30,
                   message="the answer")
        expect(panel.locator(".cf-inputs-empty")).to_be_visible(timeout=30_000)
        expect(tab).not_to_have_attribute("data-coflux-inputs", "1", timeout=30_000)
        answered = lab.api(f"coflux/api/inputs/{asked['id']}")
        assert answered["by"], answered  # the Jupyter user who answered
        page.screenshot(path=str(artifacts / "inputs-lab-panel-answered.png"))
    finally:
        worker.stop()


def worker_env(lab) -> dict[str, str]:
    from harness import base_env

    return base_env(COFLUX_SERVER=lab.url + "coflux/", COFLUX_TOKEN=lab.token)
