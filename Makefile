# The two commands of the README:  `make book`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
BUILD ?= _build
# Data directory: $BERTDRIFT_DATA if set, else ../shared/data when it exists (the offline mirror).
ifeq ($(strip $(BERTDRIFT_DATA)),)
  ifneq ($(wildcard ../shared/data/README.md),)
    export BERTDRIFT_DATA := $(abspath ../shared/data)
  endif
endif

.PHONY: book test env-book env-test clean

book: env-book
	$(PY) -m bertdrift book --profile $(PROFILE) --build $(BUILD)

test: env-test
	$(PY) -m pytest $(PYTEST_ARGS)

env-book:
	VENV=$(VENV) bash scripts/env.sh book

env-test:
	VENV=$(VENV) bash scripts/env.sh test

clean:
	rm -rf $(BUILD)
