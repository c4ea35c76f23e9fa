# The two commands a newcomer runs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
# A CPU build of torch, installed before the project so that nothing pulls a CUDA one. Here pip
# finds it on disk; elsewhere use e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo-output

.PHONY: install demo test clean

$(BIN)/lookalike: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/lookalike

# Build a small real photo collection (scikit-image's photographs plus edited copies),
# index it, search it, evaluate it, and write an HTML page of results.
demo: install
	$(BIN)/lookalike demo-data $(DEMO)/photos
	$(BIN)/lookalike index $(DEMO)/photos/images/database --collection $(DEMO)/collection --descriptor gist
	$(BIN)/lookalike search $(DEMO)/photos/images/queries/{astronaut_crop,coffee_rotate,rocket_colour,chelsea_small,motorcycle_left_jpeg}.jpg \
		--collection $(DEMO)/collection -k 5 --html $(DEMO)/results.html
	$(BIN)/lookalike eval $(DEMO)/photos/protocol.json --descriptor gist --json $(DEMO)/eval.json --plot $(DEMO)/pr.png
	@echo "Open $(DEMO)/results.html to see the results."

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO)
