# Agent Runner: `make run` to try it, `make test` to check it, `make lint` before committing.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
MANAGE := $(UV) run --frozen python manage.py

.PHONY: install run test fuzz lint format clean-db

install: .env  ## Install uv if missing, then the locked dependencies into .venv
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen

.env:  ## A local secret key (and admin password) for this checkout only; never committed
	@$(PYTHON) -c "import secrets; print('DJANGO_SECRET_KEY=' + secrets.token_urlsafe(50)); \
		print('LOCAL_ADMIN_PASSWORD=' + secrets.token_urlsafe(12))" > .env
	@echo "wrote .env with a new random DJANGO_SECRET_KEY"

run: install  ## Migrate, create a local admin, serve on http://127.0.0.1:8000 with a qcluster and the dispatcher (Procfile)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(MANAGE) migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(MANAGE) createlocaladmin
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(UV) run --frozen honcho start

test: install  ## The whole suite; PostgreSQL when DATABASE_URL is set, SQLite otherwise
	$(UV) run --frozen pytest $(PYTEST_ARGS)

fuzz: install  ## Explore (not part of make test): random seeds, many more examples; API_FUZZ_SEED=N repeats a run
	$(UV) run --frozen pytest --hypothesis-profile=fuzz -m "hypothesis or fuzz" $(PYTEST_ARGS)

lint: install  ## ruff format check and lint
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen ruff check .

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .
