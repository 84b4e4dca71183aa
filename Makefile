# The README's two commands: `make demo` and `make test`. Each creates .venv if it is missing and
# installs what it needs (torch, torchvision and torchaudio as one matched set, see constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dabfusion-installed
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,test]'
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(OFFLINE) $(PY) -m pytest -q tests

demo: $(STAMP)
	@$(OFFLINE) $(PY) -m dabfusion.demo

clean:
	rm -rf out .pytest_cache
