# The two commands of the README. Both install what they need first, so they work on a fresh machine.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --disable-pip-version-check -q

.PHONY: run test install install-dev browser java serve

run: install  ## install, then start the app on the embedded demo data (built on first start, offline)
	$(PYTHON) -m streamlit run app.py

serve: install  ## install, build what is missing (the demo by default), then serve the HTTP API on 127.0.0.1:8000
	$(PYTHON) -m recommender build
	$(PYTHON) -m recommender serve

test: install-dev browser java  ## install, then run the whole test suite
	$(PYTHON) -m pytest

install:
	$(PIP) -r requirements.txt

install-dev:
	$(PIP) -r requirements-dev.txt

# Debian's Chromium for the real-browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# A Java runtime for the Spark tests (pyspark comes from requirements-spark.txt via requirements-dev.txt).
java:
	@command -v java >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless >/dev/null; }
