# The two commands a new user needs: `make demo` and `make test`; each sets up .venv first.
.PHONY: setup demo test test-fast lint

.venv/.installed: pyproject.toml scripts/setup.sh
	@echo "==> setting up .venv (scripts/setup.sh; pip's progress follows)"
	bash scripts/setup.sh
	touch $@

setup: .venv/.installed

demo: setup
	@echo "==> mtst demo: trains on the 300 bundled sentences, then predicts 6 it never saw"
	.venv/bin/mtst demo

# One pytest worker per core (CI has two); a test file's tests stay on one worker, so a module's trained model
# is built once. `cpu-slot --slots 2 make test` here.
test: setup
	.venv/bin/python -m pytest -q -n auto --dist loadscope

test-fast: setup  # the unit tier while editing: every test not marked slow (about a minute)
	.venv/bin/python -m pytest -q -m "not slow"

lint: setup
	.venv/bin/ruff check src tests scripts benchmarks
