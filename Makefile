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

# Build a small real photo collection (scikit-image's photographs plus edited copies), index it
# with the default descriptor (GeM at 3 scales), search it, find its near-duplicates, evaluate it,
# write HTML pages of the results, then serve the web UI on 127.0.0.1 (SERVE=0: stop before that,
# as CI does).
SERVE ?= 1
PORT ?= 8000
DEMO_QUERIES := astronaut_crop coffee_rotate rocket_colour chelsea_small motorcycle_left_jpeg

demo: install
	$(BIN)/lookalike demo-data $(DEMO)/photos
	$(BIN)/lookalike index $(DEMO)/photos/images/database --collection $(DEMO)/collection
	$(BIN)/lookalike search $(foreach q,$(DEMO_QUERIES),$(DEMO)/photos/images/queries/$(q).jpg) \
		--collection $(DEMO)/collection -k 5 --html $(DEMO)/results.html
	$(BIN)/lookalike index $(DEMO)/photos/images/queries --collection $(DEMO)/collection
	$(BIN)/lookalike duplicates --collection $(DEMO)/collection --preset near --html $(DEMO)/duplicates.html > $(DEMO)/duplicates.txt
	$(BIN)/lookalike eval $(DEMO)/photos/protocol.json -d gem -s scales=1,0.7071,0.5 --json $(DEMO)/eval.json --plot $(DEMO)/pr.png
	@echo "Open $(DEMO)/results.html and $(DEMO)/duplicates.html to see the results."
ifeq ($(SERVE),1)
	$(BIN)/lookalike serve --collection $(DEMO)/collection --host 127.0.0.1 --port $(PORT)
endif

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO)
