"""The chat page in a real browser (headless Chromium over the DevTools protocol): load
/, type a message, press Send, see the answer stream into the page with tokens/s, then
a second turn that carries the first as history."""
import os

import pytest

from cdp import Browser, find_chromium


@pytest.fixture()
def browser(server):
    if find_chromium() is None:
        pytest.skip("NO BROWSER: chromium is not installed (apt-get install chromium); the chat page was NOT tested")
    b = Browser(server.url + "/")
    yield b
    b.close()


def send(browser, text):
    browser.eval(f"document.getElementById('input').value = {text!r}; "
                 "document.getElementById('send').click(); true")


def test_chat_page_streams_an_answer(browser, server):
    browser.wait_for("document.readyState === 'complete' && document.getElementById('model') !== null")
    # The page asked /v1/models for the model's name.
    assert browser.wait_for("document.getElementById('model').textContent.includes('SmolLM2')")
    browser.eval("document.getElementById('temperature').value = '0';"
                 "document.getElementById('max_tokens').value = '40'; true")
    send(browser, "What is the capital of France?")
    # While streaming, the assistant bubble fills up and Send is disabled.
    browser.wait_for("document.querySelector('.msg.assistant') !== null")
    answer = browser.wait_for("(() => { const b = document.querySelector('.msg.assistant.done');"
                              " return b ? b.textContent : ''; })()")
    assert answer.strip(), "empty answer"
    stats = browser.eval("document.querySelector('.stats').textContent")
    assert "tokens/s" in stats and "finish:" in stats, stats
    assert browser.eval("document.querySelectorAll('.msg.error').length") == 0
    assert browser.eval("document.querySelector('.msg.user').textContent") == "What is the capital of France?"

    # Second turn: two user and two assistant bubbles, the second answer streamed too.
    send(browser, "And of Italy?")
    browser.wait_for("document.querySelectorAll('.msg.assistant.done').length === 2")
    assert browser.eval("document.querySelectorAll('.msg.user').length") == 2
    second = browser.eval("document.querySelectorAll('.msg.assistant')[1].textContent")
    stats = browser.eval("document.querySelectorAll('.stats')[1].textContent")
    assert second.strip() or "finish: stop" in stats, (second, stats)  # an immediate end of turn is allowed
    assert browser.eval("document.querySelectorAll('.msg.error').length") == 0
    if os.environ.get("FLASHLM_SCREENSHOT"):
        browser.screenshot(os.environ["FLASHLM_SCREENSHOT"])
