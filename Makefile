# cnf_teach: set-up, tests, notebooks and site.
#   make lab     create .venv if needed, install everything, open the tutorials' start page in JupyterLab
#                (first use: copies tutorials/student/ into your workspace tutorials/workspace/, never over your work)
#   make lab-update CHAPTER=03  the course's newer version of a chapter you changed, beside your copy
#   make test    same set-up, then lint, the whole test suite and the notebooks in fast mode
#   make student regenerate tutorials/student/ from the solution notebooks (nbgrader)
#   make course  an nbgrader course folder (course/, git-ignored): all eight chapters generated, ready to release
#   make site    build the documentation site into site/ (strict: any warning fails)
#   make serve   serve the site on http://127.0.0.1:8000, rebuilding on changes
#   make figures retrain the small models behind the README/site figures (docs/assets/*.png)
#   make pretrained  retrain the shipped models (cnf_teach/pretrained/weights/; MODEL=name for one; hours)
# Variables you may override:
#   PYTHON=python3.12     the interpreter the virtual environment is made from
#   TORCH="torch==2.5.1"  the PyTorch requirement installed first (default: the CPU build 2.13.0;
#                         TORCH=torch takes PyPI's default build, CUDA on Linux)
#   VENV=.venv            where the virtual environment lives
#   PYTEST_ARGS=...       extra arguments for pytest, LAB_ARGS=... for jupyter lab
#   COURSE_ARGS=...       for make course, e.g. "--course ~/cnf-course --students class.csv"
#   LAB_WORKSPACE=...     the learner's notebooks, a folder inside tutorials/ to open it in JupyterLab (default tutorials/workspace, git-ignored)

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= all
PYTEST_ARGS ?=
MODEL ?= all
LAB_ARGS ?=
COURSE_ARGS ?=
LAB_WORKSPACE ?= tutorials/workspace
CHAPTER ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab lab-update test lint format clean student course site serve figures pretrained

setup: $(STAMP)

# Re-run the install only when the environment is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "cnf_teach needs Python >= 3.10; run make PYTHON=python3.1x")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[$(EXTRAS)]"
	@touch $@

# JupyterLab opens the learners' start page, rendered (tutorials/tools/jupyterlab/overrides.json: Markdown
# opens as a preview, no news fetched from the internet); the printed URL leads there too. First the learner's
# workspace is created or refreshed from tutorials/student/ (tutorials/tools/workspace.py: a notebook the
# learner changed is never overwritten; a newer course version of it is announced, for lab-update).
lab: $(STAMP)
	$(BIN)/python tutorials/tools/workspace.py sync --workspace $(LAB_WORKSPACE)
	$(BIN)/jupyter lab --ServerApp.root_dir=tutorials --LabApp.default_url=/lab/tree/00_start_here.md \
		--LabApp.app_settings_dir=tutorials/tools/jupyterlab $(ROOT_FLAG) $(LAB_ARGS)

# The course's current version of CHAPTER, copied beside the learner's own as NN_name.update-<hash>.ipynb.
lab-update: $(STAMP)
	$(BIN)/python tutorials/tools/workspace.py take $(CHAPTER) --workspace $(LAB_WORKSPACE)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Then the solution notebooks run in fast mode (cells starting with `# NBVAL_CHECK_OUTPUT` compare
# their outputs), with the kernel's own inline figures as when they were executed (not CI's Agg).
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	CNF_TEACH_FAST=1 MPLBACKEND=module://matplotlib_inline.backend_inline \
		$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider tutorials/0*.ipynb

# Student notebooks without solutions, hidden tests or outputs; a test checks they are in sync.
student: $(STAMP)
	$(BIN)/python tutorials/tools/make_student.py

# nbgrader's course folder: config with the cell timeouts, source/ and release/ of every chapter (tutorials/tools/make_course.py).
course: $(STAMP)
	$(BIN)/python tutorials/tools/make_course.py $(COURSE_ARGS)

# The documentation site (mkdocs.yml, docs/); tests/test_site.py builds it too and opens it in Chromium.
site: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

figures: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python docs/make_figures.py

# Each recipe trains on one thread and resumes from runs/pretrained/NAME/ if interrupted.
pretrained: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m cnf_teach.pretrained $(MODEL)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist site *.egg-info .pytest_cache .ruff_cache
