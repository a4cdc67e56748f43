# OMServer: `make run` starts the platform, `make test` passes the tests.
# Python 3.11: python3.11, or python3 where that is 3.11 (a fresh Debian 12 has both).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests create their own MariaDB database and user through this administrator account.
OMSERVER_TEST_MYSQL_ADMIN_URL ?= mysql://root@127.0.0.1:3306/
export OMSERVER_TEST_MYSQL_ADMIN_URL

.PHONY: setup packages-run packages-test run test test-db test-mysql test-sqlite lint schema clean

setup: packages-run $(VENV)/.installed

# System packages (one list, deploy/system-packages): installs what is missing as root,
# otherwise prints the command to run. A few ms when everything is there.
packages-run:
	@deploy/system-packages run

packages-test:
	@deploy/system-packages test

$(VENV)/.installed: pyproject.toml | packages-run
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null \
	  || { echo "OMServer needs Python 3.11: make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@mkdir -p var/log
	@echo "Setting up $(VENV) with pip (a few minutes the first time; output in var/log/setup.log)"
	@{ test -x $(PY) || $(PYTHON) -m venv $(VENV); } >var/log/setup.log 2>&1 \
	  && $(PY) -m pip install --upgrade pip >>var/log/setup.log 2>&1 \
	  && $(PY) -m pip install -e '.[test,dev]' >>var/log/setup.log 2>&1 \
	  || { tail -n 25 var/log/setup.log >&2; echo "make setup failed: see var/log/setup.log" >&2; exit 1; }
	@touch $@

run: setup
	@$(PY) manage.py runlocal --host $(HOST) --port $(PORT)

# Idempotent: makes sure the test database and user exist with the stored password.
test-db: packages-test setup
	$(PY) sql/create_database.py --admin-url $(OMSERVER_TEST_MYSQL_ADMIN_URL) \
	  --name omserver_test --user omserver_test --secret-file var/test-database.url \
	  --test-grants >/dev/null

test: packages-test setup test-mysql test-sqlite

test-mysql: test-db
	OMSERVER_DATABASE_URL=$$(cat var/test-database.url) $(PY) -m pytest $(PYTEST_ARGS)

test-sqlite: test-db
	OMSERVER_DATABASE_URL= $(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

schema: test-db
	$(PY) manage.py sqlschema --database-url $$(cat var/test-database.url) --output sql/schema-mysql.sql

clean:
	rm -rf $(VENV) var/static
