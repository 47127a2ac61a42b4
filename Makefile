# ECP: `make run` starts the control panel, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Where gunicorn's workers keep their Prometheus counters (gunicorn.conf.py clears it at start).
METRICS_DIR ?= $(or $(PROMETHEUS_MULTIPROC_DIR),$(CURDIR)/var/prometheus)

.PHONY: run test lint format venv dev-venv migrate clean soak bench bench-full bench-tools messages

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# python-ldap builds from source against OpenLDAP's and Cyrus SASL's headers.
LDAP_HEADERS := /usr/include/ldap.h /usr/include/sasl/sasl.h
$(LDAP_HEADERS):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends libldap2-dev libsasl2-dev >/dev/null

$(VENV)/.runtime: requirements.txt $(LDAP_HEADERS) | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(LDAP_HEADERS) | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# GNU gettext (xgettext, msgmerge, msgfmt): `make messages` and the translation tests
# (tests/test_i18n_catalogs.py). The compiled .mo files are committed: `make run` needs none.
GETTEXT := /usr/bin/msgfmt
$(GETTEXT):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends gettext >/dev/null

venv: $(VENV)/.runtime
dev-venv: $(VENV)/.dev

migrate: venv
	$(PY) manage.py migrate --noinput

# Links in mails (and simulate-device's default) follow the address `make run` serves,
# e.g. `make run PORT=8101`, unless ECP_BASE_URL is set.
run: export ECP_BASE_URL ?= http://$(HOST):$(PORT)
run: venv migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py eas seed-demo --if-empty
	@echo "Control panel: http://$(HOST):$(PORT)/ (links in mails: $(ECP_BASE_URL)/)"
	@echo "Metrics (from this host): http://$(HOST):$(PORT)/metrics"
	PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) $(VENV)/bin/gunicorn ecp.wsgi -c gunicorn.conf.py \
		--bind $(HOST):$(PORT) --workers 2 --access-logfile -

lint: dev-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: dev-venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: dev-venv lint $(GETTEXT)
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

# After adding or changing translatable strings: refresh locale/*/LC_MESSAGES/django.po
# (new strings come in untranslated, gone ones go), translate them, then run it again to
# compile the .mo files. tests/test_i18n_catalogs.py fails while a string lacks a translation.
messages: dev-venv $(GETTEXT)
	$(PY) manage.py makemessages
	$(PY) manage.py compilemessages --ignore '.venv/*' --ignore 'var/*'

# The long runs of issue 9 (docs/RELIABILITY.md keeps the latest figures): a million
# inputs per gate parser, and the load test at full size against gunicorn, PostgreSQL,
# Redis, a Celery worker and an SMTP server (about 10 minutes).
SOAK_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/ecp_soak)
soak: dev-venv
	$(PY) -m pip install -q -r bench/soak/requirements.txt
	mkdir -p var/soak
	$(PY) bench/soak/fuzz_parsers.py --runs 1000000 --report var/soak/fuzz.json
	DATABASE_URL=$(SOAK_DATABASE_URL) ECP_LOAD_SECONDS=60 ECP_LOAD_DEVICES=2000 \
		ECP_LOAD_CLIENTS=32 ECP_LOAD_REPORT=var/soak/load.json \
		$(PY) -m pytest -q -p no:cacheprovider tests/integration/test_load.py
	@echo "Figures: var/soak/fuzz.json var/soak/load.json"

# The benchmarks of issue 8 (bench/README.md; docs/PERFORMANCE.md keeps the latest figures).
# They need PostgreSQL and Redis, as the tests do, and wrk (apt-get install wrk). `bench`:
# 20,000 partnerships, a few minutes; `bench-full`: 1,000,000 partnerships and three runs
# of each benchmark (about 40 minutes), reusing its seeded database from one run to the next.
# wrk from Debian's packages when it is missing and apt-get can install it; otherwise
# bench/loadgen.py stands in (the gate benchmark says which load generator it used).
bench-tools:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends wrk >/dev/null; } \
		|| echo "warning: no wrk; bench/loadgen.py stands in" >&2

bench: dev-venv bench-tools
	$(PY) bench/run.py --scale small

bench-full: dev-venv bench-tools
	$(PY) bench/run.py --scale full

clean:
	rm -rf $(VENV) var/staticfiles .pytest_cache .ruff_cache
