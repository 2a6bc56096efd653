"""The web UI in a real headless Chromium: upload a photo and speech, run the default lip-sync,
and see a playable video appear."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (install.sh installs it)")
def test_upload_generate_and_play_in_chromium(server, inputs):
    from playwright.sync_api import sync_playwright

    url, _ = server
    face, speech = inputs
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#lipsync-photo input[type=file]").set_input_files(str(face))
        page.locator("#lipsync-audio input[type=file]").set_input_files(str(speech))
        page.wait_for_selector("#lipsync-photo img", timeout=60_000)
        page.wait_for_selector("#lipsync-audio audio, #lipsync-audio .waveform-container, #lipsync-audio wave",
                               state="attached", timeout=60_000)
        page.locator("#lipsync-run").click()
        page.wait_for_function(
            "() => { const v = document.querySelector('#lipsync-out video');"
            " return v !== null && v.readyState >= 1 && v.duration > 0; }",
            timeout=240_000,
        )
        duration = page.evaluate("() => document.querySelector('#lipsync-out video').duration")
        browser.close()
    assert duration > 0.5
