# Keyward developer tasks. `make` alone lists them.

PY := .venv/bin/python
RUFF := .venv/bin/ruff
STAMP := .venv/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test lint fmt bench bench-quick clean

help: ## List the targets
	@echo "Keyward make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_.-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP) ## Create .venv (Python >= 3.12) and install Keyward with its dev extras

# The interpreter: the first of these that can build a venv wins. A failed attempt can leave a
# half-built .venv behind, so each one starts from scratch.
$(PY):
	@for make_venv in \
		"env PYENV_VERSION=3.13.0 pyenv exec python -m venv .venv" \
		"env PYENV_VERSION=3.12.1 pyenv exec python -m venv .venv" \
		"python3.13 -m venv .venv" \
		"python3.12 -m venv .venv"; do \
		rm -rf .venv; \
		if $$make_venv >/dev/null 2>&1 \
			&& $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
			echo "Created .venv with: $$make_venv ($$($(PY) --version))"; \
			exit 0; \
		fi; \
	done; \
	rm -rf .venv; \
	echo "Keyward needs Python >= 3.12 to create .venv; tried pyenv 3.13.0 and 3.12.1, python3.13 and python3.12." >&2; \
	echo "Install one of them (for example: pyenv install 3.13.0) and run make again." >&2; \
	exit 1

# Re-install only when pyproject.toml changes; the stamp records the last successful install.
$(STAMP): pyproject.toml clients/python/pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e 'clients/python[drf]'
	@touch $@

# Never overwritten: the target has no prerequisites that could make it stale, and noclobber
# (set -C) refuses to replace a file that appeared in the meantime.
.env: | $(PY) ## Write a local .env (DEBUG=true, random SECRET_KEY) unless one exists
	@set -eu; umask 077; \
	key=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))'); \
	set -C; \
	{ \
		echo "# Local development settings, written by make. This file is git-ignored:"; \
		echo "# do not commit it, and do not use these values anywhere but your own machine."; \
		echo "DEBUG=true"; \
		echo "SECRET_KEY=$$key"; \
	} > $@; \
	echo "Wrote $@ (DEBUG=true, random SECRET_KEY)"

run: venv .env ## Migrate, load demo data and serve on http://127.0.0.1:8000
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

test: venv .env ## Run the test suite (extra pytest options: make test PYTEST_ARGS="-x -k keys")
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv ## Check lint and formatting (what CI runs)
	$(RUFF) check .
	$(RUFF) format --check .

fmt: venv ## Format the code and apply safe lint fixes
	$(RUFF) format .
	$(RUFF) check --fix .

bench: venv .env ## Run every benchmark 3 times (~25 min) and write bench/RESULTS.md (medians)
	$(PY) bench/run.py

bench-quick: venv .env ## Smoke-run every benchmark row at small sizes (~2 min); fails if a row has no numbers
	$(PY) bench/run.py --quick --strict

clean: ## Remove .venv, the SQLite database and collected static files (keeps .env)
	rm -rf .venv db.sqlite3 staticfiles
