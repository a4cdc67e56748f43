# OMServer: `make run` starts the platform, `make test` passes the tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests create their own MariaDB database and user through this administrator account.
OMSERVER_TEST_MYSQL_ADMIN_URL ?= mysql://root@127.0.0.1:3306/
export OMSERVER_TEST_MYSQL_ADMIN_URL

.PHONY: setup run test test-db test-mysql test-sqlite lint schema clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

run: setup
	$(PY) manage.py runlocal --host $(HOST) --port $(PORT)

# Idempotent: makes sure the test database and user exist with the stored password.
test-db: setup
	$(PY) sql/create_database.py --admin-url $(OMSERVER_TEST_MYSQL_ADMIN_URL) \
	  --name omserver_test --user omserver_test --secret-file var/test-database.url \
	  --test-grants >/dev/null

test: setup test-mysql test-sqlite

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
