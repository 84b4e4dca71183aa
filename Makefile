# The README's two commands: `make demo` and `make test`. Each creates .venv if it is missing and
# installs what it needs (torch, torchvision and torchaudio as one matched set, numpy 2: see constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dabfusion-installed
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false

# The real ComfyUI the ComfyUI-side tests run the nodes and the templates in (tests/real_comfyui.py):
# ../shared/comfyui beside the clone when it is there, or DABFUSION_COMFYUI=PATH; DABFUSION_COMFYUI=
# (empty) turns them off (they skip and say why). Its Python requirements are installed into the venv,
# but for its comfyui-* packages (the web front-end, templates and docs, which the tests do not serve).
SHARED_COMFYUI := $(abspath ../shared/comfyui)
DABFUSION_COMFYUI ?= $(if $(wildcard $(SHARED_COMFYUI)/main.py),$(SHARED_COMFYUI),)
COMFY_REQS := $(if $(DABFUSION_COMFYUI),$(wildcard $(DABFUSION_COMFYUI)/requirements.txt),)

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt $(COMFY_REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,test]'
ifneq ($(COMFY_REQS),)
	grep -v '^comfyui-' '$(COMFY_REQS)' > $(VENV)/comfyui-requirements.txt
	$(PY) -m pip install --quiet -c constraints.txt -r $(VENV)/comfyui-requirements.txt
endif
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(OFFLINE) DABFUSION_COMFYUI='$(DABFUSION_COMFYUI)' $(PY) -m pytest -q tests

demo: $(STAMP)
	@$(OFFLINE) $(PY) -m dabfusion.demo

clean:
	rm -rf out .pytest_cache
