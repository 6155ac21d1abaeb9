# The two quick-start commands (see README.md).
.PHONY: demo test

demo:
	bash scripts/bootstrap.sh
	.venv/bin/python -m pipeline run configs/demo.toml

test:
	bash .ci/run
