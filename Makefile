# Two commands: `make setup` and `make test` (see README).
PYTHON ?= python3.11
VENV := .venv
VPY := $(VENV)/bin/python
PACKAGES := clients sandbox tap-salesforce-appcues target-appcues-profiles target-salesforce-events
SOURCES := clients/salesforce_appcues_clients sandbox/salesforce_appcues_sandbox \
	tap-salesforce-appcues/tap_salesforce_appcues target-appcues-profiles/target_appcues_profiles \
	target-salesforce-events/target_salesforce_events bench orchestration
STAMP := $(VENV)/.setup-done
UV := $(PYTHON) -m uv

.PHONY: setup test lint typecheck pytest constraints demo meltano-settings dist

setup: $(STAMP)

# Re-run only when a pin or a package definition changed.
$(STAMP): constraints.txt requirements-dev.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "$$(grep '^uv==' constraints.txt)"
	@test -x $(VPY) || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(VPY) -c constraints.txt --build-constraint constraints.txt \
		-r requirements-dev.txt $(foreach p,$(PACKAGES),-e ./$(p))
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy $(SOURCES)

pytest: setup
	$(VPY) -m pytest

test: lint typecheck pytest

# Re-pin after editing requirements.in or a package's dependencies.
constraints:
	$(UV) pip compile requirements.in --python-version 3.11 --no-header -o constraints.txt

# Each plugin's sdist and wheel (the wheel built from the sdist) in dist/: installable alone,
# the shared clients bundled (docs/architecture.md, "Packaging").
PLUGINS := tap-salesforce-appcues target-appcues-profiles target-salesforce-events
dist: setup
	$(foreach p,$(PLUGINS),$(UV) build --quiet --build-constraint constraints.txt --out-dir dist $(p) &&) true

# The whole two-way sync on the local sandbox, with a summary (scripts/demo.py).
demo: setup
	$(VPY) scripts/demo.py

# Regenerate, from the plugins' --about output, the plugin definitions under plugins/,
# meltano.yml's connection settings, .env.example and docs/configuration.md
# (tests/e2e/test_generated_files.py fails when one is stale).
meltano-settings: setup
	$(VPY) scripts/sync_meltano_settings.py

# Benchmarks (bench/run.py): writes bench/results/latest.json and latest.md. FULL=1 adds the
# 1,000,000-record tap series and PATCH mode at 100,000 profiles (about 45 minutes more).
.PHONY: bench
bench: setup
	$(VPY) bench/run.py $(if $(FULL),--full)
