"""A screenshot of the top of an HTML report in headless Chromium (the README's picture of the report).

    .venv/bin/skcxr run --data ../shared/data/nih ../shared/data/nih-64 --size 64 --report report
    .venv/bin/python studies/report_screenshot.py report/report.html studies/figures/report_screenshot.png

Needs selenium and Debian's chromium + chromium-driver (as the report's browser test).
"""

import argparse
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--height", type=int, default=1700, help="pixels of the page's top to keep")
    args = parser.parse_args(argv)
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size=1280,{args.height}"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(args.page.resolve().as_uri())
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
