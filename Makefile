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

test: setup
	.venv/bin/python -m pytest -q

test-fast: setup  # the unit tier while editing: every test not marked slow (about a minute)
	.venv/bin/python -m pytest -q -m "not slow"

lint: setup
	.venv/bin/ruff check src tests scripts benchmarks
