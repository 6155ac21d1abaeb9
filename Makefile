# The two quick-start commands (see README.md).
.PHONY: dashboard test demo

dashboard:  ## set up, build the demo run if there is none, serve on http://127.0.0.1:8050
	bash scripts/bootstrap.sh
	.venv/bin/python app.py

test:  ## set up (virtualenv, Chromium, redis-server) and run the whole test suite: what CI runs
	bash .ci/run

demo:  ## (re)build only the demo run
	bash scripts/bootstrap.sh
	.venv/bin/python -m pipeline run configs/demo.toml
