"""nbgrader's settings for learners working in this repository: Validate in ``make lab``, ``nbgrader validate``.

Both read this file from the folder they start in (the repository root), and from Jupyter's configuration
folders (``jupyter --paths``). nbgrader gives each cell 30 s and waits 4 s for its output by default; the
tutorials' training cells take minutes on a laptop, and a busy machine answers slowly, so Validate would
report a timeout instead of the learner's result. The values are those of the course folder that
``make course`` writes (``tutorials/tools/make_course.py``, which also releases them beside every
assignment for Validate on a student's own machine); a test checks that they agree.
"""

c = get_config()  # noqa: F821 - nbgrader's configuration loader provides get_config

c.Execute.timeout = 3600  # seconds per cell
c.Execute.iopub_timeout = 60  # seconds to wait for a finished cell's output
