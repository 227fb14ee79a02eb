"""End to end: a real uvicorn server on loopback, headless Chromium types a sentence, clicks, reads the page.

The model is the tiny random BERT trained to memorise the toy sentences, so its answer is known. Chromium
and chromedriver come from Debian (`.ci/run` installs them); without them the test is skipped, except
where MTST_REQUIRE_BROWSER is set (CI), where it fails.
"""

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
import uvicorn
from accelerate.utils import set_seed

from mtst.config import load_config
from mtst.data import load_splits
from mtst.inference.predictor import Predictor
from mtst.serve.app import create_app
from mtst.serve.config import ServeConfig
from mtst.serve.loading import describe_checkpoint
from mtst.training.loop import Trainer
from tests.conftest import TOY_SENTENCES, write_jointbert

SENTENCE, CATEGORY, ENTITY, ENTITY_TYPE = "will it rain in berlin", "GetWeather", "berlin", "city"
ARTIFACTS = Path(os.environ.get("MTST_ARTIFACTS_DIR", Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def memorising_checkpoint(tiny_encoder_dir, tmp_path_factory) -> Path:
    """The toy sentences learnt by heart: 30 full-batch steps of the project's own training step."""
    root = tmp_path_factory.mktemp("memorise")
    for split in ("train", "dev", "test"):
        write_jointbert(root / "data" / split, TOY_SENTENCES)
    steps = 30
    overrides = {
        "encoder.name_or_path": str(tiny_encoder_dir),
        "encoder.max_length": 64,
        "data.dir": str(root / "data"),
    }
    train = {"epochs": steps, "batch_size": 8, "encoder_lr": 3e-3, "head_lr": 3e-2, "warmup_ratio": 0.0}
    config = load_config(None, **overrides, **{f"train.{key}": value for key, value in train.items()})
    set_seed(0)
    trainer, progress = Trainer.setup(config, load_splits(config.data))
    for epoch in range(1, steps + 1):
        progress.epoch, progress.step_in_epoch = epoch, 0
        trainer.train_epoch(config.train, progress, callbacks=[])
    trainer.unwrapped.save_pretrained(root / "best")
    return root / "best"


@pytest.fixture(scope="module")
def server_url(memorising_checkpoint):
    predictor = Predictor.from_checkpoint(memorising_checkpoint, device="cpu")
    [known] = predictor.predict([SENTENCE])
    assert (known["label"], [(e["text"], e["label"]) for e in known["entities"]]) == (
        CATEGORY,
        [(ENTITY, ENTITY_TYPE)],
    ), f"the memorising model did not learn the toy sentence: {known}"
    app = create_app(predictor.predict, describe_checkpoint(memorising_checkpoint), ServeConfig(max_wait_ms=1))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port, held from the start: no race with other processes
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", known
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        missing = "no chromium / chromedriver on PATH (apt-get install chromium chromium-driver)"
        if os.environ.get("MTST_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,650"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    yield driver
    driver.quit()


def test_the_page_shows_the_category_and_highlights_the_entity(browser, server_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    url, known = server_url
    browser.get(url)
    wait = WebDriverWait(browser, 20)
    wait.until(lambda driver: driver.find_element(By.ID, "model").text)  # /info answered
    browser.find_element(By.ID, "text").send_keys(SENTENCE)
    browser.find_element(By.ID, "predict").click()
    mark = wait.until(until.presence_of_element_located((By.CSS_SELECTOR, ".result mark.entity")))

    assert browser.find_element(By.CSS_SELECTOR, ".category .label").text == CATEGORY
    assert browser.find_element(By.CSS_SELECTOR, ".category .score").text == f"{known['score']:.2f}"
    assert mark.get_attribute("data-label") == ENTITY_TYPE
    assert browser.execute_script("return arguments[0].firstChild.textContent", mark) == ENTITY
    assert mark.find_element(By.CSS_SELECTOR, ".entity-label").get_attribute("textContent") == ENTITY_TYPE
    assert mark.value_of_css_property("background-color") not in ("", "rgba(0, 0, 0, 0)")
    sentence = browser.find_element(By.CSS_SELECTOR, ".result .sentence").get_attribute("textContent")
    assert sentence == SENTENCE.replace(ENTITY, ENTITY + ENTITY_TYPE)  # the label sits inside the mark
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))
    print(f"screenshot: {ARTIFACTS / 'serve-page.png'}")


def test_the_page_shows_the_servers_refusal(browser, server_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server_url[0])
    browser.find_element(By.ID, "predict").click()  # nothing typed: the server refuses an empty list
    error = WebDriverWait(browser, 20).until(lambda driver: driver.find_element(By.ID, "error"))
    WebDriverWait(browser, 20).until(lambda driver: error.is_displayed())
    assert error.text.startswith("The server refused the input: texts: List should have at least 1 item")
    assert not browser.find_elements(By.CSS_SELECTOR, ".result")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "serve-page-error.png"))
